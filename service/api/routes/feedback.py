"""Broker feedback on a match (accepted, rejected, contacted, signed, with a note), kept for learning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from service.api.deps import ActorDep, BrokerDep, PagingDep, SessionDep
from service.api.responses import FeedbackOut, Page
from service.api.schemas import FeedbackIn, Outcome
from service.core import catalog
from service.core.models import FeedbackRow


def feedback_out(row: FeedbackRow) -> FeedbackOut:
    return FeedbackOut(id=row.id, need_id=row.need_id, result_id=row.result_id, outcome=row.outcome,  # type: ignore[arg-type]
                       note=row.note, key_id=row.key_id, created_at=row.created_at)


router = APIRouter(prefix="/feedback", tags=["feedback"])


@router.post("", status_code=201, summary="Record the outcome of a match")
def add_feedback(body: FeedbackIn, session: SessionDep, caller: BrokerDep, actor: ActorDep) -> FeedbackOut:
    need = catalog.get_row(session, "need", body.need_id)
    catalog.get_row(session, "result", body.result_id)
    row = FeedbackRow(need_id=body.need_id, result_id=body.result_id, outcome=body.outcome,
                      note=body.note.strip(), key_id=caller.key_id)
    session.add(row)
    actor.log(session, "feedback", f"need {body.need_id}, result {body.result_id}: {body.outcome}",
              account=need.enterprise, commit=False)  # type: ignore[union-attr]
    session.commit()
    return feedback_out(row)


@router.get("", summary="List feedback, newest first")
def list_feedback(session: SessionDep, caller: BrokerDep, paging: PagingDep,
                  need_id: str | None = None, result_id: str | None = None,
                  outcome: Annotated[Outcome | None, Query()] = None) -> Page[FeedbackOut]:
    query = select(FeedbackRow)
    for column, value in ((FeedbackRow.need_id, need_id), (FeedbackRow.result_id, result_id),
                          (FeedbackRow.outcome, outcome)):
        if value is not None:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(FeedbackRow.id.desc()).offset(paging.offset).limit(paging.limit)).all()
    return Page[FeedbackOut](items=[feedback_out(r) for r in rows], total=total, offset=paging.offset,
                             limit=paging.limit)
