"""Enterprises and funds in the database: the names and contacts behind needs, and the funds results go to.

Contacts are personal data: ``public_enterprise`` drops them, and only brokers or the enterprise
itself ever get the full record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import ServiceError
from service.core.models import EnterpriseRow, FundRow

PRIVATE_FIELDS = ("contact",)


def public_enterprise(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in PRIVATE_FIELDS}


def _upsert(session: Session, row_type: type[EnterpriseRow] | type[FundRow], items: Iterable[dict]) -> int:
    count = 0
    for item in items:
        if not isinstance(item, dict) or not str(item.get("id") or "").strip():
            raise ServiceError(f"every {row_type.__tablename__[:-1]} needs an id; got {str(item)[:80]}", 422)
        item_id = str(item["id"]).strip()
        row = session.get(row_type, item_id) or row_type(id=item_id)
        row.name = str(item.get("name") or item_id)
        row.data = {**item, "id": item_id}
        session.add(row)
        count += 1
    session.commit()
    return count


def upsert_enterprises(session: Session, items: Iterable[dict]) -> int:
    return _upsert(session, EnterpriseRow, items)


def upsert_funds(session: Session, items: Iterable[dict]) -> int:
    return _upsert(session, FundRow, items)


def enterprises_by_id(session: Session) -> dict[str, dict[str, Any]]:
    """All enterprises without contacts: what push lists may show."""
    return {row.id: public_enterprise(row.data) for row in session.scalars(select(EnterpriseRow))}


def stored_funds(session: Session) -> list:
    """The stored funds as triage ``Fund`` objects (parsed with the triage module's own rules)."""
    from recommender.triage.funds import parse_funds

    rows = session.scalars(select(FundRow).order_by(FundRow.id)).all()
    if not rows:
        return []
    return parse_funds(((f"fund {r.id}", r.data, None) for r in rows), "database")
