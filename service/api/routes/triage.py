"""Triage for brokers: the shortlist of transferable results, and who each result should be pushed to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import ActorDep, BrokerDep, EngineDep, PagingDep, SessionDep
from service.api.responses import Page, PushOut, PushTargetOut, ResultOut, ShortlistEntryOut
from service.core import catalog
from service.core.config import MAX_K
from service.core.partners import enterprises_by_id, stored_funds

router = APIRouter(tags=["triage"])
MAX_SHORTLIST = 1000


@router.get("/results/{result_id}/push", summary="Enterprises and funds to push a result to (brokers)")
def push_result(result_id: str, session: SessionDep, caller: BrokerDep, engine: EngineDep,
                k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> PushOut:
    row = catalog.get_row(session, "result", result_id)
    targets = engine.push_result(result_id, stored_funds(session), k, enterprises_by_id(session))
    return PushOut(result=ResultOut.model_validate(catalog.row_out(row)),
                   targets=[PushTargetOut.of(t) for t in targets])


@router.get("/shortlist", summary="The most transferable results with push lists (brokers)")
def get_shortlist(session: SessionDep, caller: BrokerDep, engine: EngineDep, paging: PagingDep, actor: ActorDep,
                  top: Annotated[int, Query(ge=1, le=MAX_SHORTLIST, description="length of the shortlist")] = 50
                  ) -> Page[ShortlistEntryOut]:
    """Over every stored need and result. The market pull (the minutes-long part at 30,000 results) is
    computed once per index version, reading the index in batches so searches and writes go on meanwhile."""
    entries = engine.shortlist(top, stored_funds(session), enterprises_by_id(session))
    actor.log(session, "shortlist.run", f"top {top}: {len(entries)} results")
    items = [ShortlistEntryOut.of(e) for e in entries[paging.offset:paging.offset + paging.limit]]
    return Page[ShortlistEntryOut](items=items, total=len(entries), offset=paging.offset, limit=paging.limit)
