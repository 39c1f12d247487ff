"""What the workbench pages do beyond reading records: the same tables, live index and rules as the API.

An enterprise sees and changes only its own needs (another enterprise's need is "not found", as in the
API); needs are written through ``catalog`` (so the index follows every write); feedback lands in the
``feedback`` table that ``GET /feedback``, ``techmatch feedback export`` and training read; push lists come
from ``recommender.triage`` exactly as ``GET /results/{id}/push`` computes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from recommender.engine import Engine
from recommender.filters import ResultFilters
from recommender.hybrid import Match
from recommender.records import Record, free_text_need, parse_record
from recommender.triage.targets import PushTarget
from service.core import catalog
from service.core.config import MAX_NOTE_CHARS, MAX_TEXT_CHARS
from service.core.errors import NotFound, ServiceError
from service.core.ids import find_need, new_id
from service.core.models import EnterpriseRow, FeedbackRow, InterestRow, NeedRow
from service.core.partners import enterprises_by_id, stored_funds
from service.core.security import Caller
from service.core.sync import IndexSync

OUTCOMES = ("accepted", "rejected", "contacted", "signed")


def visible_need(session: Session, caller: Caller, need_id: str) -> NeedRow:
    """The need if this caller may see it: an enterprise's own needs only, by stored id or by the alias it asked
    for (another's answers 404 exactly like a missing id, as in the API; see ``ids``)."""
    row = find_need(session, caller, need_id)
    if row is None:
        raise NotFound(f"unknown need id '{need_id}'")
    return row


@dataclass
class NeedFields:
    """What the need form asks for; everything else a stored need carries is kept as it was."""

    title: str
    description: str
    field: str | None = None
    budget: float | None = None
    region: str | None = None
    enterprise: str | None = None


def _need_record(session: Session, caller: Caller, fields: NeedFields, need_id: str,
                 base: Mapping[str, Any]) -> Record:
    enterprise = caller.enterprise if not caller.is_broker else (fields.enterprise or base.get("enterprise"))
    raw: dict[str, Any] = {**base, "id": need_id, "title": fields.title, "description": fields.description,
                           "field": fields.field, "region": fields.region, "enterprise": enterprise}
    if fields.budget is None:
        raw.pop("budget", None)
    else:
        raw["budget"] = int(fields.budget) if float(fields.budget).is_integer() else fields.budget
    company = session.get(EnterpriseRow, enterprise) if enterprise else None
    if company is not None:  # as the demo world's needs carry them: who asks, in which industry
        raw["enterprise_name"] = company.name
        raw.setdefault("industry", company.data.get("industry"))
    raw = {k: v for k, v in raw.items() if v not in (None, "")}
    record, problems = parse_record(raw, "need", "form", "need")
    if record is None:
        raise ServiceError("; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems), 422)
    if len(record.text) > MAX_TEXT_CHARS:
        raise ServiceError(f"the need has {len(record.text)} characters of text; the limit is {MAX_TEXT_CHARS}", 422)
    return record


def create_need(session: Session, sync: IndexSync, caller: Caller, fields: NeedFields) -> NeedRow:
    """Store a new need (an enterprise's always carries its own enterprise id) and index it."""
    if caller.is_broker and not fields.enterprise:
        raise ServiceError("a broker creating a need must say which enterprise it belongs to", 422)
    record = _need_record(session, caller, fields, new_id(session, "need"), {})
    catalog.create_records(session, sync, "need", [record])
    return catalog.get_row(session, "need", record.id)  # type: ignore[return-value]


def update_need(session: Session, sync: IndexSync, caller: Caller, need_id: str, fields: NeedFields) -> NeedRow:
    """Change the form's fields of a visible need, keeping the rest of what it carries."""
    row = visible_need(session, caller, need_id)
    record = _need_record(session, caller, fields, row.id, dict(row.data))
    return catalog.update_record(session, sync, "need", record)  # type: ignore[return-value]


# -- an enterprise's "interested" marks ---------------------------------------------------------------
def set_interest(session: Session, caller: Caller, need_id: str, result_id: str, interested: bool,
                 user_id: int) -> bool:
    """Mark (or unmark) a result as interesting for one of the caller's needs; returns the new state."""
    need_id = visible_need(session, caller, need_id).id
    catalog.get_row(session, "result", result_id)
    found = session.scalar(select(InterestRow).where(InterestRow.need_id == need_id,
                                                     InterestRow.result_id == result_id))
    if interested and found is None:
        session.add(InterestRow(need_id=need_id, result_id=result_id, user_id=user_id))
    elif not interested and found is not None:
        session.execute(delete(InterestRow).where(InterestRow.id == found.id))
    session.commit()
    return interested


def interests_of(session: Session, need_id: str) -> set[str]:
    """The results an enterprise marked as interesting for this need."""
    return set(session.scalars(select(InterestRow.result_id).where(InterestRow.need_id == need_id)))


def interested_needs(session: Session, result_id: str) -> set[str]:
    """The needs whose enterprise marked this result as interesting."""
    return set(session.scalars(select(InterestRow.need_id).where(InterestRow.result_id == result_id)))


def recent_interests(session: Session, limit: int = 8) -> list[InterestRow]:
    """The newest "interested" marks: what a broker should follow up first."""
    return list(session.scalars(select(InterestRow).order_by(InterestRow.id.desc()).limit(limit)))


def interest_counts(session: Session, need_ids: list[str]) -> dict[str, int]:
    """How many results were marked per need (for lists of needs)."""
    if not need_ids:
        return {}
    rows = session.execute(select(InterestRow.need_id, func.count()).where(InterestRow.need_id.in_(need_ids))
                           .group_by(InterestRow.need_id)).all()
    return {need_id: int(count) for need_id, count in rows}


# -- broker feedback (the learning's labels) ----------------------------------------------------------
def record_feedback(session: Session, caller: Caller, need_id: str, result_id: str, outcome: str,
                    note: str = "") -> FeedbackRow:
    """One outcome for a (need, result) pair, in the table ``GET /feedback`` and the learning read."""
    if not caller.is_broker:
        raise ServiceError("only brokers record outcomes", 403)
    if outcome not in OUTCOMES:
        raise ServiceError(f"unknown outcome '{outcome}': use one of {', '.join(OUTCOMES)}", 422)
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ServiceError(f"the note has {len(note)} characters; the limit is {MAX_NOTE_CHARS}", 422)
    catalog.get_row(session, "need", need_id)
    catalog.get_row(session, "result", result_id)
    row = FeedbackRow(need_id=need_id, result_id=result_id, outcome=outcome, note=note, key_id=caller.key_id)
    session.add(row)
    session.commit()
    return row


def latest_feedback(session: Session, need_id: str | None = None,
                    result_id: str | None = None) -> dict[tuple[str, str], FeedbackRow]:
    """The newest outcome of each (need, result) pair of one need or one result (what the learning keeps)."""
    query = select(FeedbackRow).order_by(FeedbackRow.id)
    if need_id is not None:
        query = query.where(FeedbackRow.need_id == need_id)
    if result_id is not None:
        query = query.where(FeedbackRow.result_id == result_id)
    return {(row.need_id, row.result_id): row for row in session.scalars(query)}


FEEDBACK_COLUMNS = ["need_id", "result_id", "outcome", "note", "created_at"]


def feedback_export_rows(session: Session) -> list[dict[str, Any]]:
    """Every feedback row, oldest first, as ``techmatch feedback export`` and the web download write it."""
    return [{"need_id": r.need_id, "result_id": r.result_id, "outcome": r.outcome, "note": r.note,
             "created_at": r.created_at.isoformat()}
            for r in session.scalars(select(FeedbackRow).order_by(FeedbackRow.id))]


def write_feedback(session: Session, path: Path) -> int:
    """Write every feedback row to ``path``: JSON Lines (for learning), or .csv/.xlsx (cells made safe by
    ``recommender.spreadsheet``, the one writer of spreadsheets). Returns the number of rows."""
    import json

    import pandas as pd

    from recommender.spreadsheet import write_table

    rows = feedback_export_rows(session)
    if path.suffix.lower() in (".csv", ".xlsx"):
        write_table(pd.DataFrame(rows, columns=FEEDBACK_COLUMNS), path, sheet="feedback")
        return len(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def recent_feedback(session: Session, offset: int, limit: int) -> tuple[list[FeedbackRow], int]:
    total = session.scalar(select(func.count()).select_from(FeedbackRow)) or 0
    rows = session.scalars(select(FeedbackRow).order_by(FeedbackRow.id.desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)


AGREE_RANK = 20  # a signal "agrees" on a match that it ranks in its own top 20

# -- searches a broker runs ---------------------------------------------------------------------------
def results_for(engine: Engine, need: Record, k: int, filters: ResultFilters | None = None,
                explain: bool = True) -> list[dict[str, Any]]:
    """A need's top results as the pages show them: the API's match fields, each with its record, the titles
    of the duplicates folded under it, and how many signals agree on it (the headline without a grader)."""
    return shown_matches(engine, engine.results_for([need], k, filters, explain)[0])


def shown_matches(engine: Engine, matches: list[Match]) -> list[dict[str, Any]]:
    """Matches as the pages show them (both the plain list and the one re-ranked by feedback)."""
    shown = []
    folded = engine.records("result") if any(m.duplicates for m in matches) else {}
    for m in matches:
        row = m.to_dict("result", with_record=True)
        row["duplicate_records"] = [{"id": d, "title": folded[d].title} for d in m.duplicates if d in folded]
        row["signals_agreeing"] = sum(1 for s in m.signals.values() if s.rank is not None and s.rank <= AGREE_RANK)
        shown.append(row)
    return shown


def push_targets(session: Session, engine: Engine, result_id: str, k: int = 10) -> list[PushTarget]:
    """Enterprises (through their needs) and funds to push a result to, as ``GET /results/{id}/push`` gives."""
    catalog.get_row(session, "result", result_id)
    funds, enterprises = stored_funds(session), enterprises_by_id(session)
    if not engine.count("need") and not funds:
        return []
    return engine.push_result(result_id, funds, k, enterprises)


def find_needs(engine: Engine, text: str, k: int) -> list[Match]:
    """Stored needs closest to a free text (the need side of the index), with the shared key terms."""
    if not engine.count("need"):
        return []
    return engine.needs_for([free_text_need(text)], k)[0]
