"""Triage for brokers: the shortlist of transferable results, and who each result should be pushed to."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.deps import BrokerDep, PagingDep, ServicesDep, SessionDep
from service.api.schemas import Page
from service.core import catalog
from service.core.config import MAX_K
from service.core.errors import ServiceError
from service.core.partners import enterprises_by_id, stored_funds

router = APIRouter(tags=["triage"])
MAX_SHORTLIST = 1000
_cache: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
_cache_lock = threading.Lock()


@router.get("/results/{result_id}/push", summary="Enterprises and funds to push a result to (brokers)")
def push_result(result_id: str, session: SessionDep, caller: BrokerDep, services: ServicesDep,
                k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> dict:
    from recommender.triage import push_for_result

    row = catalog.get_row(session, "result", result_id)
    funds, enterprises = stored_funds(session), enterprises_by_id(session)
    live = services.live
    live.catch_up()
    with live.lock.reading():
        if not len(live.side("need")) and not funds:
            raise ServiceError("no needs or funds are stored yet: add them before pushing results", 409)
        targets = push_for_result(live.matcher, result_id, funds, k, enterprises)
    return {"result": catalog.row_out(row), "targets": [t.to_dict() for t in targets]}


@router.get("/shortlist", response_model=Page, summary="The most transferable results with push lists (brokers)")
def get_shortlist(session: SessionDep, caller: BrokerDep, services: ServicesDep, paging: PagingDep,
                  top: Annotated[int, Query(ge=1, le=MAX_SHORTLIST, description="length of the shortlist")] = 50
                  ) -> Page:
    """Computed over every stored need and result; cached until the next write (it reads every need)."""
    from recommender.triage import shortlist

    live = services.live
    live.catch_up()
    key = (id(live), live.version, top)
    with _cache_lock:
        rows = _cache.get(key)
        if rows is None:
            funds, enterprises = stored_funds(session), enterprises_by_id(session)
            with live.lock.reading():
                if not len(live.side("result")):
                    raise ServiceError("no results are stored yet: add results before asking for a shortlist", 409)
                needs = list(live.side("need").records.values())
                grader = getattr(live.matcher, "grader", None)
                entries = shortlist(live.matcher, needs, top, funds, enterprises, grader=grader, progress=False)
            rows = [e.to_dict() for e in entries]
            _cache.clear()
            _cache[key] = rows
    items = rows[paging.offset:paging.offset + paging.limit]
    return Page(items=items, total=len(rows), offset=paging.offset, limit=paging.limit)
