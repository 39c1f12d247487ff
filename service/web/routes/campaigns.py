"""Review campaigns in the workbench (issue 20): open a campaign, read one result at a time and decide
(可转化 / 不可转化 / 跳过, keyboard shortcuts in static/review.js), see where the campaign stands (gain curve, the
estimate of recall reached, when stopping is reasonable), download what was found with its push lists.

The pages only call ``service.core.campaigns`` (which only calls ``recommender.review``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Request
from starlette.responses import Response

from recommender.triage.export import push_frame, shortlist_frame
from service.api.deps import EngineDep, ServicesDep, SessionDep, client_address
from service.core import campaigns as C
from service.core import catalog
from service.core.accounts import list_users
from service.core.config import MAX_NOTE_CHARS
from service.core.errors import NotFound, ServiceError
from service.core.workbench import push_targets
from service.web.auth import BrokerDep
from service.web.gaincurve import gain_svg
from service.web.routes import web_router
from service.web.templating import redirect, render

router = web_router()
DECISION_LABELS = {"transferable": "可转化", "not_transferable": "不可转化", "skip": "跳过"}
SCOPE_LABELS = {"all": "全部成果", "field": "按领域", "institution": "按机构", "since": "某日以后新增"}
MAX_ID = 2**31 - 1
PUSH_TARGETS = 6


def _campaign(session, campaign_id: str):
    if not campaign_id.isdigit() or not 1 <= int(campaign_id) <= MAX_ID:
        raise NotFound(f"unknown campaign id '{campaign_id[:40]}'")
    return C.get_campaign(session, int(campaign_id))


def _names(session) -> dict[str, str]:
    return {f"user:{u.id}": (u.display_name or u.username) for u in list_users(session)}


@router.get("/campaigns")
def campaigns_page(request: Request, session: SessionDep, found: BrokerDep) -> Response:
    rows, _ = C.list_campaigns(session, 0, 100)
    counts = {r.id: C.signature(session, r.id)[0] for r in rows}
    found_counts = {r.id: len(C.transferable(session, r.id)) for r in rows}
    return render(request, "campaigns.html", nav="campaigns", rows=rows, counts=counts, found_counts=found_counts,
                  choices=C.scope_choices(session), scopes=SCOPE_LABELS, names=_names(session))


@router.post("/campaigns")
def create_campaign_action(request: Request, session: SessionDep, services: ServicesDep, found: BrokerDep,
                           name: Annotated[str, Form(max_length=C.MAX_NAME_CHARS + 50)] = "",
                           scope: Annotated[str, Form(max_length=20)] = "all",
                           value: Annotated[str, Form(max_length=300)] = "") -> Response:
    if not name.strip():
        raise ServiceError("请为评审任务起一个名称", 422)
    if scope not in C.SCOPES:
        raise ServiceError("评审范围应为：全部成果、按领域、按机构或某日以后新增", 422)
    if scope != "all" and not value.strip():
        wanted = "日期（YYYY-MM-DD）" if scope == "since" else "名称"
        raise ServiceError(f"评审范围“{SCOPE_LABELS[scope]}”需要填写{wanted}", 422)
    try:
        row = C.create_campaign(session, found.user.caller, name, scope, value, client_address(request))
    except ServiceError as exc:
        if exc.status == 409:
            raise ServiceError("该范围内没有任何已入库的科技成果，无需评审", 409) from None
        if "YYYY-MM-DD" in exc.message:
            raise ServiceError("日期格式应为 YYYY-MM-DD，例如 2026-01-01", 422) from None
        raise
    services.campaigns.state(row.id)  # the model is built in the background from now on
    return redirect(request, f"/web/campaigns/{row.id}/review")


def _status(session, services, row):
    model = services.campaigns.state(row.id, C.signature(session, row.id))
    return C.campaign_status(session, row, model), model


@router.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, campaign_id: str, session: SessionDep, services: ServicesDep,
                  found: BrokerDep) -> Response:
    """Where the campaign stands: counts, the gain curve, the estimate of recall, the stopping rule, decisions."""
    row = _campaign(session, campaign_id)
    status, model = _status(session, services, row)
    recent = list(reversed(C.decisions(session, row.id)))[:50]
    titles = {r.result_id: r.result_id for r in recent}
    records = services.engine.records("result")
    titles.update({rid: records[rid].title for rid in titles if rid in records})
    return render(request, "campaign.html", nav="campaigns", campaign=row, progress=status, model=model,
                  curve=gain_svg(status.gains, status.pool - status.skipped), recent=recent, titles=titles,
                  names=_names(session), decisions=DECISION_LABELS, scopes=SCOPE_LABELS)


@router.get("/campaigns/{campaign_id}/review")
def review_page(request: Request, campaign_id: str, session: SessionDep, services: ServicesDep, engine: EngineDep,
                found: BrokerDep) -> Response:
    """One result at a time, held for this broker while they read it; nobody else is shown it meanwhile."""
    row = _campaign(session, campaign_id)
    ids, model = C.next_results(session, services.campaigns, row, found.user.caller, 1,
                                services.settings.review_hold_seconds)
    result = None
    enterprises, funds = [], []
    if ids:
        result = catalog.get_row(session, "result", ids[0])
        targets = push_targets(session, engine, ids[0], PUSH_TARGETS)
        enterprises = [t for t in targets if t.kind == "enterprise"]
        funds = [t for t in targets if t.kind == "fund"]
    status = C.campaign_status(session, row, model)
    return render(request, "review.html", nav="campaigns", campaign=row, result=result,
                  data=result.data if result is not None else {}, enterprises=enterprises, funds=funds,
                  progress=status, model=model, hold_minutes=round(services.settings.review_hold_seconds / 60, 1),
                  curve=gain_svg(status.gains, status.pool - status.skipped), max_note=MAX_NOTE_CHARS)


@router.post("/campaigns/{campaign_id}/decide")
def decide_action(request: Request, campaign_id: str, session: SessionDep, services: ServicesDep, found: BrokerDep,
                  result_id: Annotated[str, Form(max_length=200)], decision: Annotated[str, Form(max_length=20)],
                  note: Annotated[str, Form(max_length=MAX_NOTE_CHARS + 200)] = "") -> Response:
    row = _campaign(session, campaign_id)
    if decision not in C.DECISIONS:
        raise ServiceError("决定应为：可转化、不可转化或跳过", 422)
    C.decide(session, services.campaigns, row, found.user.caller, result_id, decision, note, client_address(request))
    return redirect(request, f"/web/campaigns/{row.id}/review")


@router.get("/campaigns/{campaign_id}/model")
def model_fragment(request: Request, campaign_id: str, session: SessionDep, services: ServicesDep,
                   found: BrokerDep, reload: str = "") -> Response:
    """The model's progress bar (polled by htmx once a second while it is built or refit); a page that waited
    for the first build to show a result is told to reload."""
    row = _campaign(session, campaign_id)
    model = services.campaigns.state(row.id, C.signature(session, row.id))
    response = render(request, "_review_model.html", campaign=row, model=model, reload=reload)
    if not model.busy and reload and request.headers.get("HX-Request"):
        response.headers["HX-Refresh"] = "true"
    return response


@router.get("/campaigns/{campaign_id}/export.{suffix}")
def campaign_download(request: Request, campaign_id: str, suffix: str, session: SessionDep, services: ServicesDep,
                      found: BrokerDep) -> Response:
    """The results decided 可转化 with their push lists, written like the shortlist's files (plus who decided,
    when, and the note)."""
    from recommender import spreadsheet

    if suffix not in ("csv", "xlsx"):
        raise ServiceError(f"unknown download type '.{suffix}': use .csv or .xlsx", 404)
    row = _campaign(session, campaign_id)
    model = services.campaigns.state(row.id)
    services.sync.catch_up()
    entries = C.export_entries(session, services.sync, row.id, model)
    names = _names(session)
    decided = {d.result_id: d for d in C.transferable(session, row.id)}
    frame = shortlist_frame(entries)
    if len(frame):
        frame["decided_by"] = [names.get(decided[r].who, decided[r].who) for r in frame["result_id"]]
        frame["decided_at"] = [C.aware(decided[r].created_at).isoformat() for r in frame["result_id"]]
        frame["note"] = [decided[r].note for r in frame["result_id"]]
    with tempfile.TemporaryDirectory(prefix="techmatch-export-") as folder:
        path = Path(folder) / f"campaign.{suffix}"
        if suffix == "csv":
            spreadsheet.write_csv(frame, path)
        else:
            spreadsheet.write_xlsx({"shortlist": frame, "push": push_frame(entries)}, path)
        body = path.read_bytes()
    name = f"评审-{row.id}-可转化.{suffix}"
    media = "text/csv; charset=utf-8" if suffix == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f"attachment; filename=campaign-{row.id}.{suffix}; filename*=UTF-8''{quote(name)}"})
