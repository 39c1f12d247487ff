"""One-click outcomes on a (need, result) pair, written to the feedback table the learning reads."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from service.api.deps import SessionDep
from service.core.accounts import list_users
from service.core.config import MAX_NOTE_CHARS
from service.core.errors import ServiceError
from service.core.models import NeedRow
from service.core.workbench import recent_feedback, record_feedback, write_feedback
from service.web.auth import BrokerDep, actor
from service.web.forms import Pager, page_number
from service.web.routes import web_router
from service.web.templating import redirect, render

router = web_router()
PAGE_SIZE = 30


@router.post("/feedback")
def feedback_action(request: Request, session: SessionDep, found: BrokerDep,
                    need_id: Annotated[str, Form(max_length=200)], result_id: Annotated[str, Form(max_length=200)],
                    outcome: Annotated[str, Form(max_length=20)],
                    note: Annotated[str, Form(max_length=MAX_NOTE_CHARS + 200)] = "",
                    back: Annotated[str, Form(max_length=2000)] = "") -> Response:
    row = record_feedback(session, found.user.caller, need_id, result_id, outcome, note)
    need = session.get(NeedRow, need_id)
    actor(request, found).log(session, "feedback", f"need {need_id}, result {result_id}: {outcome}",
                              account=need.enterprise if need is not None else None)
    if request.headers.get("HX-Request"):
        return render(request, "_feedback.html", need_id=need_id, result_id=result_id, latest=row, just_saved=True)
    target = back if back.startswith("/web/") and not back.startswith("//") else f"/web/needs/{need_id}"
    return redirect(request, target)


@router.get("/feedback")
def feedback_page(request: Request, session: SessionDep, found: BrokerDep, page: str = "1") -> Response:
    pager = Pager(page_number(page), PAGE_SIZE)
    rows, pager.total = recent_feedback(session, pager.offset, pager.size)
    names = {f"user:{u.id}": (u.display_name or u.username) for u in list_users(session)}
    return render(request, "feedback.html", nav="feedback", rows=rows, pager=pager, names=names)


@router.get("/feedback.{suffix}")
def feedback_download(request: Request, suffix: str, session: SessionDep, found: BrokerDep) -> Response:
    """Every outcome as a spreadsheet (the file ``techmatch feedback export --out x.xlsx`` writes)."""
    if suffix not in ("csv", "xlsx"):
        raise ServiceError(f"unknown download type '.{suffix}': use .csv or .xlsx", 404)
    with tempfile.TemporaryDirectory(prefix="techmatch-export-") as folder:
        path = Path(folder) / f"feedback.{suffix}"
        write_feedback(session, path)
        body = path.read_bytes()
    actor(request, found).log(session, "export", f"feedback.{suffix}")
    media = "text/csv; charset=utf-8" if suffix == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={"Content-Disposition": f"attachment; filename=feedback.{suffix}"})
