"""The audit trail over the API: a broker reads every entry, an enterprise key only its own enterprise's."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import CallerDep, PagingDep, SessionDep
from service.api.responses import AuditOut, Page
from service.core.audit import list_audit

router = APIRouter(prefix="/audit", tags=["audit"])


def day_start(day: date | None, days_after: int = 0) -> datetime | None:
    """Midnight UTC of a day (``days_after`` later): the bounds of a date-range filter."""
    if day is None:
        return None
    try:
        return datetime.combine(day + timedelta(days=days_after), time(), tzinfo=timezone.utc)
    except OverflowError:  # the day after 9999-12-31: no upper bound
        return None


@router.get("", summary="Audit entries, newest first (an enterprise key sees its own enterprise's)")
def read_audit(
    session: SessionDep, caller: CallerDep, paging: PagingDep,
    action: Annotated[str, Query(max_length=50, description="actions starting with this, e.g. 'record.' or 'signin'")]
    = "",
    actor: Annotated[str, Query(max_length=200, description="actors containing this, e.g. 'user:wang'")] = "",
    since: Annotated[date | None, Query(description="from this day (UTC), inclusive")] = None,
    until: Annotated[date | None, Query(description="to this day (UTC), inclusive")] = None,
) -> Page[AuditOut]:
    rows, total = list_audit(session, account=caller.enterprise, scoped=not caller.is_broker, action=action,
                             actor=actor, since=day_start(since), until=day_start(until, 1),
                             offset=paging.offset, limit=paging.limit)
    return Page[AuditOut](items=[AuditOut.model_validate(r, from_attributes=True) for r in rows], total=total,
                          offset=paging.offset, limit=paging.limit)
