"""Needs and results in the database, each write mirrored into the live index in the same request.

Writes go to the database in one transaction first (a bulk upload is all or nothing), together with a
row per changed record in the change log and, on the pgvector backend, the records' vectors (embedded
before the transaction locks anything: ``service.core.vectors``); then this process replays the log into
its index (other worker processes do so before their next search). If the index step fails the database
keeps the acknowledged write and the index is re-synced from it (see ``sync``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recommender.filters import ResultFilters
from recommender.records import Kind, Record
from service.core.db import lock_writers
from service.core.errors import Conflict, NotFound
from service.core.models import IndexChangeRow, NeedRow, ResultRow, utcnow
from service.core.sync import ROWS, IndexSync, record_hash, row_record

Row = NeedRow | ResultRow


def _columns(record: Record, kind: Kind) -> dict[str, Any]:
    """The filterable columns of a record, taken from its extra fields."""
    extra = record.extra
    if kind == "need":
        enterprise = extra.get("enterprise")
        return {"enterprise": None if enterprise is None else str(enterprise)}

    def text(name: str) -> str | None:
        value = extra.get(name)
        return None if value is None else str(value)

    trl = extra.get("trl")
    return {"field": text("field"), "institution": text("institution"), "ip_status": text("ip_status"),
            "trl": trl if isinstance(trl, int) else None}


def _fill(row: Row, record: Record, kind: Kind) -> None:
    row.title = record.title
    row.data = record.to_dict(kind)
    row.content_hash = record_hash(record, kind)
    for name, value in _columns(record, kind).items():
        setattr(row, name, value)


def _log_changes(session: Session, kind: Kind, ids: Sequence[str], sync: IndexSync | None = None) -> list[int]:
    """Add change-log rows to the open transaction. On PostgreSQL a transaction-scoped advisory lock makes
    writers take log numbers in commit order (a reader never skips a number that commits later); SQLite
    already runs one writer at a time. With ``sync``, the numbers are noted as this process's writes in
    flight, which its searches leave to this request (see ``IndexSync.catch_up``)."""
    lock_writers(session)
    rows = [IndexChangeRow(kind=kind, record_id=record_id) for record_id in ids]
    session.add_all(rows)
    if sync is None:
        return []
    session.flush()
    seqs = [row.seq for row in rows]
    sync.writing(seqs)
    return seqs


def _commit(session: Session, sync: IndexSync | None, seqs: Sequence[int]) -> None:
    """Commit; a failed commit's change-log numbers are no write in flight (SQLite may hand them out again)."""
    try:
        session.commit()
    except Exception:
        if sync is not None:
            sync.forget(seqs)
        raise


def _mirror(session: Session, sync: IndexSync) -> None:
    """Replay the committed change into this process's index; if that fails, re-sync it from the database."""
    try:
        sync.catch_up(sessionmaker(session.get_bind()))
    except Exception:
        sync.open(sessionmaker(session.get_bind()))  # raises (a logged 500) only if the re-sync fails too


def get_row(session: Session, kind: Kind, record_id: str) -> Row:
    row = session.get(ROWS[kind], record_id)
    if row is None:
        raise NotFound(f"unknown {kind} id '{record_id}'")
    return row


def get_record(session: Session, kind: Kind, record_id: str) -> Record:
    return row_record(get_row(session, kind, record_id), kind)


def _existing_rows(session: Session, kind: Kind, ids: Sequence[str]) -> dict[str, Any]:
    """The stored rows among these ids, looked up in chunks (databases cap the parameters of one query)."""
    row_type = ROWS[kind]
    return {
        row.id: row
        for start in range(0, len(ids), 900)
        for row in session.scalars(select(row_type).where(row_type.id.in_(ids[start:start + 900])))
    }


def _write_rows(session: Session, kind: Kind, records: Sequence[Record], existing: dict[str, Any],
                sync: IndexSync | None = None) -> None:
    """Fill new or existing rows from the records and commit them together."""
    row_type = ROWS[kind]
    for record in records:
        row = existing.get(record.id) or row_type(id=record.id, created_at=utcnow())
        _fill(row, record, kind)
        row.updated_at = utcnow()
        session.add(row)
    if sync is not None and sync.vectors is not None:
        sync.vectors.write(session, kind, upserts=records)
    _commit(session, sync, _log_changes(session, kind, [r.id for r in records], sync))


def store_rows(session: Session, kind: Kind, records: Sequence[Record]) -> None:
    """Insert-or-replace in the database only (bulk loads; the caller re-syncs the index afterwards)."""
    _write_rows(session, kind, records, _existing_rows(session, kind, [r.id for r in records]))


def create_records(session: Session, sync: IndexSync, kind: Kind, records: Sequence[Record],
                   replace: bool = False) -> int:
    """Insert records (or, with ``replace``, insert-or-replace) in one transaction, then index them."""
    existing = _existing_rows(session, kind, [r.id for r in records])
    if existing and not replace:
        shown = ", ".join(sorted(existing)[:10]) + (" ..." if len(existing) > 10 else "")
        session.rollback()
        raise Conflict(f"{len(existing)} {kind} id(s) already exist: {shown}; nothing was written "
                       "(update them with PUT, or upload with ?replace=true)")
    _write_rows(session, kind, records, existing, sync)
    _mirror(session, sync)
    return len(records)


def update_record(session: Session, sync: IndexSync, kind: Kind, record: Record) -> Row:
    row = get_row(session, kind, record.id)
    _fill(row, record, kind)
    row.updated_at = utcnow()
    if sync.vectors is not None:
        sync.vectors.write(session, kind, upserts=[record])
    _commit(session, sync, _log_changes(session, kind, [record.id], sync))
    _mirror(session, sync)
    return row


def delete_record(session: Session, sync: IndexSync, kind: Kind, record_id: str) -> None:
    row = get_row(session, kind, record_id)
    session.delete(row)
    if sync.vectors is not None:
        sync.vectors.write(session, kind, deletes=[record_id])
    _commit(session, sync, _log_changes(session, kind, [record_id], sync))
    _mirror(session, sync)


def list_rows(session: Session, kind: Kind, offset: int, limit: int, filters: ResultFilters | None = None,
              enterprise: str | None = None) -> tuple[list[Row], int]:
    """A page of records in id order: results narrowed by ``filters``, needs by ``enterprise`` (None: all)."""
    row_type = ROWS[kind]
    query = select(row_type)
    if enterprise is not None:
        query = query.where(NeedRow.enterprise == enterprise)
    conditions = filters.conditions() if filters is not None else {}
    for name, value in conditions.items():
        if name == "trl_min":
            query = query.where(ResultRow.trl >= value)
        elif name == "trl_max":
            query = query.where(ResultRow.trl <= value)
        else:
            query = query.where(getattr(ResultRow, name) == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(row_type.id).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def row_out(row: Row) -> dict[str, Any]:
    """A stored record as the API shows it: its contract fields plus when it was written."""
    return {**row.data, "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}
