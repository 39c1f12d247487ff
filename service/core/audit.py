"""The audit trail: who did what, when and from where, one row per action in ``audit_log``.

One function, ``audit``, for every writer (pages, API, CLI, and code of other branches such as review
decisions), so entries look alike. ``account`` is the enterprise an entry belongs to: an enterprise user
sees exactly the entries of its own enterprise, a broker sees all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.models import AuditRow

MAX_DETAIL_CHARS = 2_000
ACTIONS = (
    "signin.ok", "signin.failed", "signin.throttled", "key.created", "key.revoked", "user.created",
    "user.disabled", "user.enabled", "user.password_changed", "record.created", "record.updated",
    "record.deleted", "upload", "export", "shortlist.run", "feedback", "interest", "judgement", "review.decision",
    "enterprise.created", "enterprise.disabled", "user.admin", "user.not_admin", "campaign.create",
)
_OWN = object()


def audit(session: Session, actor: str, action: str, detail: str = "", address: str = "", *,
          account: str | None = None, commit: bool = True) -> AuditRow:
    """Add one entry; ``commit=False`` leaves it in the caller's transaction (written with the change itself)."""
    row = AuditRow(actor=(actor or "-")[:200], action=action[:50], detail=(detail or "")[:MAX_DETAIL_CHARS],
                   address=(address or "")[:100], account=account)
    session.add(row)
    if commit:
        session.commit()
    return row


@dataclass(frozen=True)
class Actor:
    """Who acts and from where: ``user:<username>`` (pages), ``key:<key id>`` (API), ``cli`` (command line);
    ``account`` is the enterprise their entries belong to unless an entry names another (a broker's change to
    an enterprise's need belongs to that enterprise)."""

    name: str
    address: str = ""
    account: str | None = None

    def log(self, session: Session, action: str, detail: str = "", *, account: object = _OWN,
            commit: bool = True) -> AuditRow:
        """One entry by this actor (``account`` defaults to the actor's own)."""
        owner = self.account if account is _OWN else account
        return audit(session, self.name, action, detail, self.address, account=owner,  # type: ignore[arg-type]
                     commit=commit)


CLI = Actor("cli")


def list_audit(session: Session, *, account: str | None = None, scoped: bool = False, action: str = "",
               actor: str = "", since: datetime | None = None, until: datetime | None = None, offset: int = 0,
               limit: int = 100) -> tuple[Sequence[AuditRow], int]:
    """Entries newest first with their total; ``scoped`` keeps only ``account``'s (an enterprise's view)."""
    query = select(AuditRow)
    if scoped:
        query = query.where(AuditRow.account == account)
    if action:
        query = query.where(AuditRow.action.startswith(action))
    if actor:
        query = query.where(AuditRow.actor.contains(actor))
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if until is not None:
        query = query.where(AuditRow.at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditRow.at.desc(), AuditRow.id.desc()).offset(offset).limit(limit)).all()
    return rows, total
