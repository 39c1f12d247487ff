"""What the admin pages do beyond single users and keys: enterprises as a whole, and the overview they list.

Admins are brokers with the ``is_admin`` flag (``techmatch users create --admin`` or ``users set-admin``); a
broker without it works with needs and results but cannot manage accounts. Disabling an enterprise disables
every user of it and revokes every key it holds, in one transaction (the security epoch moves, so every
worker refuses them on the next request), and is audited.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from recommender.errors import UserError
from service.core.audit import Actor
from service.core.models import ApiKeyRow, EnterpriseRow, UserRow, WebSessionRow, utcnow
from service.core.security import bump_epoch

ENTERPRISE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class EnterpriseSummary:
    """An enterprise as the admin page lists it: its users and keys, active and in all."""

    id: str
    name: str
    users: int
    active_users: int
    keys: int
    live_keys: int


def enterprise_summaries(session: Session) -> list[EnterpriseSummary]:
    """Every enterprise known to the database, or named by a user or key, with its account counts."""
    users = dict(session.execute(select(UserRow.enterprise, func.count()).group_by(UserRow.enterprise)).all())
    active = dict(session.execute(select(UserRow.enterprise, func.count()).where(UserRow.disabled.is_(False))
                                  .group_by(UserRow.enterprise)).all())
    keys = dict(session.execute(select(ApiKeyRow.enterprise, func.count()).group_by(ApiKeyRow.enterprise)).all())
    live = dict(session.execute(select(ApiKeyRow.enterprise, func.count()).where(ApiKeyRow.revoked_at.is_(None))
                                .group_by(ApiKeyRow.enterprise)).all())
    names = dict(session.execute(select(EnterpriseRow.id, EnterpriseRow.name)).all())
    ids = sorted({*names, *(k for k in users if k), *(k for k in keys if k)})
    return [EnterpriseSummary(i, names.get(i, ""), users.get(i, 0), active.get(i, 0), keys.get(i, 0),
                              live.get(i, 0)) for i in ids]


def create_enterprise(session: Session, name: str, enterprise_id: str = "", industry: str = "", region: str = "",
                      *, actor: Actor) -> EnterpriseRow:
    """A new enterprise record (a random E-id when none is given); audited."""
    name = name.strip()
    if not name:
        raise UserError("an enterprise needs a name")
    enterprise_id = enterprise_id.strip() or f"E{secrets.token_hex(3).upper()}"
    if not ENTERPRISE_ID.match(enterprise_id):
        raise UserError(f"invalid enterprise id '{enterprise_id}': letters, digits or . _ -, at most 64")
    if session.get(EnterpriseRow, enterprise_id) is not None:
        raise UserError(f"enterprise '{enterprise_id}' exists already")
    data = {"id": enterprise_id, "name": name, **({"industry": industry.strip()} if industry.strip() else {}),
            **({"region": region.strip()} if region.strip() else {})}
    row = EnterpriseRow(id=enterprise_id, name=name, data=data)
    session.add(row)
    actor.log(session, "enterprise.created", f"{enterprise_id} {name}", account=enterprise_id, commit=False)
    session.commit()
    return row


def disable_enterprise(session: Session, enterprise_id: str, *, actor: Actor) -> tuple[int, int]:
    """Disable every user of the enterprise (ending their sessions) and revoke every key it holds; returns
    (users disabled, keys revoked)."""
    user_ids = list(session.scalars(select(UserRow.id).where(UserRow.enterprise == enterprise_id,
                                                             UserRow.disabled.is_(False))))
    if user_ids:
        session.execute(update(UserRow).where(UserRow.id.in_(user_ids)).values(disabled=True))
        session.execute(delete(WebSessionRow).where(WebSessionRow.user_id.in_(user_ids)))
    revoked = session.execute(update(ApiKeyRow).where(ApiKeyRow.enterprise == enterprise_id,
                                                      ApiKeyRow.revoked_at.is_(None))
                              .values(revoked_at=utcnow())).rowcount or 0
    bump_epoch(session)
    actor.log(session, "enterprise.disabled", f"{enterprise_id}: {len(user_ids)} user(s) disabled, {revoked} key(s) "
              "revoked", account=enterprise_id, commit=False)
    session.commit()
    return len(user_ids), revoked
