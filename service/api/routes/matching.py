"""Free-text matching: an enterprise describes a need and sees the best results, without storing it."""

from __future__ import annotations

from fastapi import APIRouter

from recommender.records import free_text_need
from service.api.deps import CallerDep, EngineDep
from service.api.responses import FreeTextQueryOut, ResultMatchesOut, ResultMatchOut
from service.api.schemas import MatchTextIn

router = APIRouter(tags=["matching"])


@router.post("/match", summary="Top-k results for a need given as free text")
def match_text(body: MatchTextIn, caller: CallerDep, engine: EngineDep) -> ResultMatchesOut:
    query = free_text_need(body.text, body.title)
    matches = engine.results_for([query], body.k, body.filters, body.explain,
                                 collapse=body.collapse_duplicates)[0]
    return ResultMatchesOut(query=FreeTextQueryOut(title=query.title, text=body.text, k=body.k),
                            matches=[ResultMatchOut.of(m) for m in matches])
