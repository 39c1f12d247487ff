"""Free-text matching: an enterprise describes a need and sees the best results, without storing it."""

from __future__ import annotations

from fastapi import APIRouter

from recommender.records import free_text_need
from service.api.deps import CallerDep, ServicesDep
from service.api.schemas import MatchesOut, MatchTextIn
from service.core.matching import results_for

router = APIRouter(tags=["matching"])


@router.post("/match", response_model=MatchesOut, summary="Top-k results for a need given as free text")
def match_text(body: MatchTextIn, caller: CallerDep, services: ServicesDep) -> MatchesOut:
    query = free_text_need(body.text, body.title)
    matches = results_for(services.live, query, body.k, body.filters, body.explain)
    return MatchesOut(query={"title": query.title, "text": body.text, "k": body.k}, matches=matches)
