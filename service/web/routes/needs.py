"""Needs: an enterprise's own list, the need form, and the match page (top results with their reasons).

An enterprise user sees only its enterprise's needs: another enterprise's need answers the 404 page. A
broker sees every need, records outcomes on the match page and sees what the enterprise marked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from service.api.deps import EngineDep, ServicesDep, SessionDep
from service.core import catalog
from service.core.config import MAX_K
from service.core.dashboard import facets
from service.core.models import EnterpriseRow, NeedRow, ResultRow
from service.core.relevance import ranked_with_feedback, record_judgement
from service.core.workbench import (
    create_need,
    find_needs,
    interest_counts,
    interests_of,
    latest_feedback,
    results_for,
    set_interest,
    shown_matches,
    update_need,
    visible_need,
)
from service.web.auth import UserDep, actor
from service.web.forms import NeedForm, Pager, page_number, result_filters
from service.web.routes import web_router
from service.web.templating import redirect, render

router = web_router()
PAGE_SIZE = 20
SEARCH_DEPTH = 60
MATCH_CHOICES = (10, 20, 50)


@router.get("/needs")
def needs_page(request: Request, session: SessionDep, engine: EngineDep, found: UserDep,
               q: str = "", enterprise: str = "", page: str = "1") -> Response:
    caller = found.user.caller
    owner = caller.enterprise if not caller.is_broker else (enterprise.strip() or None)
    pager = Pager(page_number(page), PAGE_SIZE)
    scores: dict[str, float] = {}
    if q.strip() and caller.is_broker:
        matches = [m for m in find_needs(engine, q.strip()[:500], SEARCH_DEPTH)
                   if owner is None or m.record.extra.get("enterprise") == owner]
        pager.total = len(matches)
        chosen = matches[pager.offset:pager.offset + pager.size]
        scores = {m.id: m.score for m in chosen}
        rows = [r for r in (session.get(NeedRow, m.id) for m in chosen) if r is not None]
    else:
        rows, pager.total = catalog.list_rows(session, "need", pager.offset, pager.size, enterprise=owner)
    marks = interest_counts(session, [r.id for r in rows])
    return render(request, "needs.html", nav="needs", rows=rows, pager=pager, q=q, enterprise=enterprise,
                  scores=scores, marks=marks)


def _form_page(request: Request, session, form: NeedForm, need_id: str | None, status: int = 200) -> Response:
    return render(request, "need_form.html", status=status, nav="new" if need_id is None else "needs",
                  form=form, need_id=need_id, fields=facets(session).fields)


@router.get("/needs/new")
def new_need_page(request: Request, session: SessionDep, found: UserDep) -> Response:
    form = NeedForm()
    enterprise = found.user.enterprise and session.get(EnterpriseRow, found.user.enterprise)
    if enterprise:
        form.region = str(enterprise.data.get("region") or "")
        form.field = str(enterprise.data.get("field") or "")
    return _form_page(request, session, form, None)


FormText = Annotated[str, Form(max_length=25_000)]


@router.post("/needs")
def create_need_action(request: Request, session: SessionDep, services: ServicesDep, found: UserDep,
                       title: FormText = "", description: FormText = "", field: FormText = "",
                       budget: FormText = "", region: FormText = "", enterprise: FormText = "") -> Response:
    form = NeedForm(title, description, field, budget, region, enterprise)
    fields = form.check(need_enterprise=found.user.is_broker)
    if fields is None:
        return _form_page(request, session, form, None, status=422)
    row = create_need(session, services.sync, found.user.caller, fields)
    actor(request, found).log(session, "record.created", f"need × 1: {row.id}", account=row.enterprise)
    return redirect(request, f"/web/needs/{row.id}", flash="need_created")


@router.get("/needs/{need_id}")
def need_page(request: Request, need_id: str, session: SessionDep, engine: EngineDep, found: UserDep,
              k: str = "10") -> Response:
    """The match page: the need's top results with score, grade, each signal's rank and the shared terms."""
    caller = found.user.caller
    row = visible_need(session, caller, need_id)
    record = catalog.row_record(row, "need")
    filters, filter_error = result_filters(dict(request.query_params))
    top = page_number(k) if page_number(k) in MATCH_CHOICES else 10
    return render(request, "need.html", nav="needs", need=row, record=record, filters=filters,
                  filter_error=filter_error, k_choices=MATCH_CHOICES, facets=facets(session),
                  enterprise=session.get(EnterpriseRow, row.enterprise) if row.enterprise else None,
                  **_match_list(session, engine, found.user, row, record, filters, top))


def _match_list(session, engine, user, row: NeedRow, record, filters, k: int) -> dict:
    """What the match list shows: without filters, the need's results re-ranked by its judgements."""
    judged: dict[str, str] = {}
    if filters is None or not filters.active():
        ranked, judged = ranked_with_feedback(session, engine, user.caller, row.id, min(k, MAX_K))
        matches = shown_matches(engine, ranked)
    else:
        matches = results_for(engine, record, min(k, MAX_K), filters, explain=True)
    titles = {r.id: r.title for r in (session.get(ResultRow, rid) for rid in judged) if r is not None}
    return {"matches": matches, "k": k, "judged": judged, "judged_titles": titles,
            "interests": interests_of(session, row.id),
            "feedback": latest_feedback(session, need_id=row.id) if user.caller.is_broker else {}}


@router.post("/needs/{need_id}/judge")
def judge_action(request: Request, need_id: str, session: SessionDep, engine: EngineDep, found: UserDep,
                 result_id: Annotated[str, Form(max_length=200)], judgement: Annotated[str, Form(max_length=20)],
                 k: Annotated[str, Form(max_length=5)] = "10") -> Response:
    """相关 / 不相关 on a shown result (or 'none' to take it back): htmx swaps in the re-ranked list."""
    record_judgement(session, found.user.caller, need_id, result_id, judgement, f"user:{found.user.id}")
    actor(request, found).log(session, "judgement", f"need {need_id}, result {result_id}: {judgement}",
                              account=visible_need(session, found.user.caller, need_id).enterprise)
    if not request.headers.get("HX-Request"):
        return redirect(request, f"/web/needs/{need_id}")
    row = visible_need(session, found.user.caller, need_id)
    top = page_number(k) if page_number(k) in MATCH_CHOICES else 10
    return render(request, "_matches.html", need=row, record=catalog.row_record(row, "need"),
                  **_match_list(session, engine, found.user, row, None, None, top))


@router.get("/needs/{need_id}/edit")
def edit_need_page(request: Request, need_id: str, session: SessionDep, found: UserDep) -> Response:
    row = visible_need(session, found.user.caller, need_id)
    return _form_page(request, session, NeedForm.from_data(row.data), need_id)


@router.post("/needs/{need_id}/edit")
def edit_need_action(request: Request, need_id: str, session: SessionDep, services: ServicesDep, found: UserDep,
                     title: FormText = "", description: FormText = "", field: FormText = "",
                     budget: FormText = "", region: FormText = "", enterprise: FormText = "") -> Response:
    visible_need(session, found.user.caller, need_id)
    form = NeedForm(title, description, field, budget, region, enterprise)
    fields = form.check(need_enterprise=False)
    if fields is None:
        return _form_page(request, session, form, need_id, status=422)
    row = update_need(session, services.sync, found.user.caller, need_id, fields)
    actor(request, found).log(session, "record.updated", f"need {need_id}", account=row.enterprise)
    return redirect(request, f"/web/needs/{need_id}", flash="need_saved")


@router.post("/needs/{need_id}/interest")
def interest_action(request: Request, need_id: str, session: SessionDep, found: UserDep,
                    result_id: Annotated[str, Form(max_length=200)],
                    interested: Annotated[str, Form(max_length=5)] = "1") -> Response:
    """Mark or unmark a match as interesting (the enterprise); htmx swaps in the new button."""
    state = set_interest(session, found.user.caller, need_id, result_id, interested == "1", found.user.id)
    actor(request, found).log(session, "interest", f"need {need_id}, result {result_id}: {'on' if state else 'off'}",
                              account=visible_need(session, found.user.caller, need_id).enterprise)
    if request.headers.get("HX-Request"):
        return render(request, "_interest.html", need_id=need_id, result_id=result_id, marked=state)
    return redirect(request, f"/web/needs/{need_id}#m-{result_id}")
