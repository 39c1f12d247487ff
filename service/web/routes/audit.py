"""The audit page: who did what, when and from where, filtered by action, actor and dates, with a CSV export.

A broker sees every entry; an enterprise user sees only its own enterprise's (the same rule as ``GET /audit``).
Downloading the CSV is itself an audited export.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from fastapi import Request
from starlette.responses import Response

from service.api.deps import SessionDep
from service.api.routes.audit import day_start
from service.core.audit import ACTIONS, list_audit
from service.web.auth import UserDep, actor
from service.web.forms import Pager, page_number
from service.web.routes import web_router
from service.web.templating import BEIJING, render

router = web_router()
PAGE_SIZE = 50
MAX_EXPORT = 50_000


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def _query(found, action: str, who: str, since: str, until: str) -> dict:
    return {"account": found.user.enterprise, "scoped": not found.user.is_broker, "action": action.strip()[:50],
            "actor": who.strip()[:200], "since": day_start(_day(since)), "until": day_start(_day(until), 1)}


@router.get("/audit")
def audit_page(request: Request, session: SessionDep, found: UserDep, action: str = "", who: str = "",
               since: str = "", until: str = "", page: str = "1") -> Response:
    pager = Pager(page_number(page), PAGE_SIZE)
    rows, pager.total = list_audit(session, **_query(found, action, who, since, until), offset=pager.offset,
                                   limit=pager.size)
    return render(request, "audit.html", nav="audit", rows=rows, pager=pager, actions=ACTIONS, action=action,
                  who=who, since=since if _day(since) else "", until=until if _day(until) else "")


def _local_time(moment: datetime) -> str:
    return moment.astimezone(BEIJING).isoformat(timespec="seconds") if moment.tzinfo else moment.isoformat() + "Z"


@router.get("/audit.csv")
def audit_download(request: Request, session: SessionDep, found: UserDep, action: str = "", who: str = "",
                   since: str = "", until: str = "") -> Response:
    """The filtered entries as CSV (UTF-8 with a BOM, so Excel opens the Chinese correctly)."""
    rows, _ = list_audit(session, **_query(found, action, who, since, until), limit=MAX_EXPORT)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at", "actor", "account", "action", "detail", "address"])
    for r in rows:
        writer.writerow([r.id, _local_time(r.at), r.actor, r.account or "", r.action, r.detail, r.address])
    actor(request, found).log(session, "export", f"audit.csv ({len(rows)} entries)")
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=audit.csv"})
