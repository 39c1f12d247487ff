"""Results for brokers: browse and search with the API's filters, and one result with its push list."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from recommender.records import free_text_need
from service.api.deps import EngineDep, SessionDep
from service.core import catalog
from service.core.campaigns import campaign_decision_of
from service.core.config import MAX_K
from service.core.dashboard import facets
from service.core.workbench import interested_needs, latest_feedback, push_targets, results_for
from service.web.auth import BrokerDep
from service.web.forms import Pager, page_number, result_filters
from service.web.routes import web_router
from service.web.templating import render

router = web_router()
PAGE_SIZE = 20
PUSH_TARGETS = 10


@router.get("/results")
def results_page(request: Request, session: SessionDep, engine: EngineDep, found: BrokerDep,
                 q: str = "", page: str = "1") -> Response:
    """Without a query: the stored results in id order, filtered in SQL. With one: the best matches (up to 100)."""
    filters, filter_error = result_filters(dict(request.query_params))
    pager = Pager(page_number(page), PAGE_SIZE)
    matches = None
    rows: list = []
    if q.strip():
        ranked = results_for(engine, free_text_need(q.strip()[:2000]), MAX_K, filters, explain=True)
        pager.total = len(ranked)
        matches = ranked[pager.offset:pager.offset + pager.size]
    else:
        rows, pager.total = catalog.list_rows(session, "result", pager.offset, pager.size, filters=filters)
    return render(request, "results.html", nav="results", rows=rows, matches=matches, pager=pager, q=q,
                  filters=filters, filter_error=filter_error, facets=facets(session))


@router.get("/results/{result_id}")
def result_page(request: Request, result_id: str, session: SessionDep, engine: EngineDep,
                found: BrokerDep) -> Response:
    """A result, the enterprises (through their needs) and funds to push it to, and the outcomes so far."""
    row = catalog.get_row(session, "result", result_id)
    targets = push_targets(session, engine, result_id, PUSH_TARGETS)
    return render(request, "result.html", nav="results", result=row, data=row.data,
                  enterprises=[t for t in targets if t.kind == "enterprise"],
                  funds=[t for t in targets if t.kind == "fund"],
                  feedback=latest_feedback(session, result_id=result_id),
                  interested=interested_needs(session, result_id),
                  reviews=campaign_decision_of(session, result_id))
