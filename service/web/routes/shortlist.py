"""The shortlist: computed as a background job with a progress bar, shown as a sortable table, downloaded
as Excel or CSV (written by recommender/triage/export.py, as ``techmatch shortlist`` writes them)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Request
from starlette.responses import Response

from recommender.triage.export import write_csv, write_xlsx
from service.api.deps import ServicesDep, SessionDep
from service.core.campaigns import latest_decisions
from service.core.errors import ServiceError
from service.core.jobs import (
    MAX_SHORTLIST_TOP,
    SHORTLIST,
    active_job,
    entries_from_rows,
    get_job,
    latest_job,
    shortlist_rows,
    start_shortlist,
)
from service.web.auth import BrokerDep, actor
from service.web.forms import Pager, page_number
from service.web.routes import web_router
from service.web.templating import redirect, render

router = web_router()
PAGE_SIZE = 50
SORTS = {"rank": "rank", "score": "score", "market_pull": "market_pull", "readiness": "readiness", "trl": "trl",
         "field": "field", "institution": "institution", "title": "title"}
DESCENDING_FIRST = ("score", "market_pull", "readiness", "trl")


def _sorted(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    present = [r for r in rows if r.get(key) not in (None, "")]
    missing = [r for r in rows if r.get(key) in (None, "")]  # unknown values go last either way
    present.sort(key=lambda r: (r[key], -r["rank"] if descending else r["rank"]), reverse=descending)
    return present + missing


@router.get("/shortlist")
def shortlist_page(request: Request, session: SessionDep, found: BrokerDep, sort: str = "rank", dir: str = "",
                   page: str = "1") -> Response:
    job = latest_job(session, SHORTLIST, state="done")
    running = active_job(session)
    key = sort if sort in SORTS else "rank"
    descending = dir == "desc" if dir in ("asc", "desc") else key in DESCENDING_FIRST
    pager = Pager(page_number(page), PAGE_SIZE)
    rows: list[dict[str, Any]] = []
    if job is not None:
        every = _sorted(shortlist_rows(session, job.id), key, descending)
        pager.total = len(every)
        rows = every[pager.offset:pager.offset + pager.size]
    last = latest_job(session, SHORTLIST)
    return render(request, "shortlist.html", nav="shortlist", job=job, running=running,
                  failed=last if last is not None and last.state in ("failed", "interrupted") else None,
                  rows=rows, reviews=latest_decisions(session, [r["result_id"] for r in rows]),
                  pager=pager, sort=key, descending=descending, max_top=MAX_SHORTLIST_TOP,
                  default_top=(job.params.get("top") if job else None) or 100)


@router.post("/shortlist")
def start_shortlist_action(request: Request, session: SessionDep, services: ServicesDep, found: BrokerDep,
                           top: Annotated[str, Form(max_length=10)] = "100") -> Response:
    try:
        length = int(top)
    except ValueError:
        raise ServiceError(f"短名单长度应为 1 到 {MAX_SHORTLIST_TOP} 的整数", 422) from None
    job = start_shortlist(services.sessions, services.sync, length, found.user.id)
    actor(request, found).log(session, "shortlist.run", f"top {length} (job {job.id})")
    return redirect(request, "/web/shortlist", flash="job_started")


@router.get("/jobs/{job_id}")
def job_fragment(request: Request, job_id: str, session: SessionDep, found: BrokerDep) -> Response:
    """The progress bar (polled by htmx every second); a finished job tells the page to reload."""
    job = get_job(session, job_id)
    response = render(request, "_job.html", job=job)
    if not job.active and request.headers.get("HX-Request"):
        response.headers["HX-Refresh"] = "true"
    return response


@router.get("/shortlist.{suffix}")
def shortlist_download(request: Request, suffix: str, session: SessionDep, found: BrokerDep,
                       job: str = "") -> Response:
    if suffix not in ("csv", "xlsx"):
        raise ServiceError(f"unknown download type '.{suffix}': use .csv or .xlsx", 404)
    chosen = get_job(session, job) if job else latest_job(session, SHORTLIST, state="done")
    if chosen is None or chosen.state != "done":
        raise ServiceError("还没有计算好的短名单：请先在“短名单”页面开始计算", 409)
    entries = entries_from_rows(shortlist_rows(session, chosen.id))
    actor(request, found).log(session, "export", f"shortlist.{suffix} (job {chosen.id}, {len(entries)} rows)")
    with tempfile.TemporaryDirectory(prefix="techmatch-export-") as folder:
        path = Path(folder) / f"shortlist.{suffix}"
        (write_csv if suffix == "csv" else write_xlsx)(entries, path)
        body = path.read_bytes()
    stamp = (chosen.finished_at or chosen.created_at).strftime("%Y%m%d-%H%M")
    name = f"短名单-{stamp}.{suffix}"
    media = "text/csv; charset=utf-8" if suffix == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f"attachment; filename=shortlist-{stamp}.{suffix}; filename*=UTF-8''{quote(name)}"})
