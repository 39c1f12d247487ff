"""Relevance feedback on a need's match list: the judgements stored, and the list they re-rank.

Brokers judge any need's results; an enterprise judges only its own needs' (another's answers "not found",
as everywhere). A judgement is 'relevant' or 'irrelevant' (one per pair, the latest wins; 'none' clears
it); the enterprise's existing "感兴趣" marks count as 'interested'. The re-ranking is the engine's
(``Engine.results_with_feedback``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from recommender.engine import Engine
from service.core import catalog
from service.core.errors import ServiceError
from service.core.models import InterestRow, JudgementRow
from service.core.security import Caller
from service.core.workbench import visible_need

JUDGEMENTS = ("relevant", "irrelevant")
CLEAR = "none"


def record_judgement(session: Session, caller: Caller, need_id: str, result_id: str, judgement: str,
                     who: str) -> None:
    """Store (or clear, with 'none') the caller's judgement of one result for a need it may see."""
    if judgement not in (*JUDGEMENTS, CLEAR):
        raise ServiceError(f"unknown judgement '{judgement}': use relevant, irrelevant or none", 422)
    need_id = visible_need(session, caller, need_id).id  # the stored id (an enterprise may use its alias)
    catalog.get_row(session, "result", result_id)
    session.execute(delete(JudgementRow).where(JudgementRow.need_id == need_id, JudgementRow.result_id == result_id))
    if judgement != CLEAR:
        session.add(JudgementRow(need_id=need_id, result_id=result_id, judgement=judgement, who=who))
    session.commit()


def judgements_of(session: Session, need_id: str) -> dict[str, str]:
    """Result id -> 'relevant' / 'irrelevant' / 'interested' for one need (an explicit judgement wins)."""
    marked = session.scalars(select(InterestRow.result_id).where(InterestRow.need_id == need_id))
    out = {r: "interested" for r in marked}
    for row in session.scalars(select(JudgementRow).where(JudgementRow.need_id == need_id)):
        out[row.result_id] = row.judgement
    return out


def ranked_with_feedback(session: Session, engine: Engine, caller: Caller, need_id: str,
                         k: int) -> tuple[list[Any], dict[str, str]]:
    """The need's top-k unjudged results re-ranked by its judgements, and the judgements used."""
    row = visible_need(session, caller, need_id)
    judged = judgements_of(session, row.id)
    return engine.results_with_feedback(catalog.row_record(row, "need"), judged, k), judged
