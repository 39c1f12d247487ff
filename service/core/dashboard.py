"""The broker's overview: the transfer funnel, counts per field, and the values the result filters offer.

Funnel stages count what the database holds: needs and results stored, results on the latest shortlist,
and (need, result) pairs by the furthest outcome a broker recorded for them. The stages follow the
broker's order (``recommender.learning.feedback``): accepted (pushed to the enterprise) comes before
contacted, contacted before signed, so a signed pair counts as pushed and contacted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.jobs import SHORTLIST, JobView, latest_job
from service.core.models import FeedbackRow, InterestRow, NeedRow, ResultRow

# Which recorded outcomes mean a pair reached a stage.
STAGE_OUTCOMES = {
    "pushed": ("accepted", "contacted", "signed"),
    "contacted": ("contacted", "signed"),
    "signed": ("signed",),
}


@dataclass
class Funnel:
    needs: int
    results: int
    shortlisted: int
    pushed: int
    contacted: int
    signed: int
    interested: int  # pairs an enterprise marked "interested" (what a broker should follow up)
    rejected: int
    shortlist_job: JobView | None = None


@dataclass
class FieldCount:
    field: str
    results: int
    needs: int
    shortlisted: int


@dataclass
class Facets:
    """The values the result filters can take, as stored."""

    fields: list[str] = field(default_factory=list)
    institutions: list[str] = field(default_factory=list)
    ip_statuses: list[str] = field(default_factory=list)


def _pairs(session: Session, outcomes: tuple[str, ...]) -> int:
    pairs = (select(FeedbackRow.need_id, FeedbackRow.result_id).where(FeedbackRow.outcome.in_(outcomes))
             .distinct().subquery())
    return int(session.scalar(select(func.count()).select_from(pairs)) or 0)


def funnel(session: Session) -> Funnel:
    job = latest_job(session, SHORTLIST, state="done")
    return Funnel(
        needs=int(session.scalar(select(func.count()).select_from(NeedRow)) or 0),
        results=int(session.scalar(select(func.count()).select_from(ResultRow)) or 0),
        shortlisted=int(job.summary.get("entries", 0)) if job else 0,
        pushed=_pairs(session, STAGE_OUTCOMES["pushed"]),
        contacted=_pairs(session, STAGE_OUTCOMES["contacted"]),
        signed=_pairs(session, STAGE_OUTCOMES["signed"]),
        interested=int(session.scalar(select(func.count()).select_from(InterestRow)) or 0),
        rejected=_pairs(session, ("rejected",)),
        shortlist_job=job,
    )


def field_counts(session: Session, shortlist_job: JobView | None = None) -> list[FieldCount]:
    """Results, needs and shortlisted results per field, largest first."""
    results = dict(session.execute(select(ResultRow.field, func.count()).group_by(ResultRow.field)).all())
    need_field = NeedRow.data["field"].as_string()
    needs = dict(session.execute(select(need_field, func.count()).group_by(need_field)).all())
    shortlisted = (shortlist_job.summary.get("by_field", {}) if shortlist_job else {}) or {}
    names = {str(k) for k in (*results, *needs) if k}
    rows = [FieldCount(name, int(results.get(name, 0)), int(needs.get(name, 0)), int(shortlisted.get(name, 0)))
            for name in names]
    rows.sort(key=lambda r: (-(r.results + r.needs), r.field))
    return rows


def facets(session: Session) -> Facets:
    def values(column) -> list[str]:
        return [v for v in session.scalars(select(column).where(column.is_not(None)).distinct().order_by(column)) if v]

    return Facets(values(ResultRow.field), values(ResultRow.institution), values(ResultRow.ip_status))
