"""Background jobs: the shortlist of a whole corpus, computed in a thread of the serving process.

Shortlisting matches every stored need against every result (half a minute for the 2,000-result demo on
2 cores, minutes for a large corpus), so a page starts it and polls instead of waiting on one request. The
job's state and progress live in the ``jobs`` table: any page, and any worker process, can show them; a
heartbeat marks a job whose process died as interrupted rather than running forever. The answer (the
entries as ``ShortlistEntry.to_dict`` gives them) is stored with the job, so the table and its Excel/CSV
download are read back without computing anything again.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer, sessionmaker

from recommender.errors import TechmatchError
from recommender.records import Record
from recommender.triage.shortlist import ShortlistEntry
from recommender.triage.targets import PushTarget
from service.core.errors import ServiceError
from service.core.models import JobRow, utcnow
from service.core.partners import enterprises_by_id, stored_funds
from service.core.sync import IndexSync

log = logging.getLogger("techmatch.service")
SHORTLIST = "shortlist"
MAX_SHORTLIST_TOP = 1000
HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0  # no heartbeat for this long: the process that ran the job is gone
PROGRESS_EVERY_SECONDS = 0.5  # progress is written at most this often (and always at the end)
ACTIVE = ("queued", "running")
_start_lock = threading.Lock()


def aware(moment: datetime | None) -> datetime | None:
    """A stored time with its zone (SQLite gives times back without one; they are stored in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class JobView:
    """A job as a page shows it; ``state`` is queued, running, done, failed or interrupted."""

    id: str
    kind: str
    state: str
    done: int
    total: int
    params: dict[str, Any]
    summary: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def seconds(self) -> float:
        """How long it ran (or has been running)."""
        start = self.started_at or self.created_at
        end = self.finished_at or utcnow()
        return max(0.0, (end - start).total_seconds())


def _view(row: JobRow) -> JobView:
    state = row.state
    beat = aware(row.heartbeat_at)
    if state in ACTIVE and (beat is None or (utcnow() - beat).total_seconds() > STALE_SECONDS):
        state = "interrupted"
    return JobView(row.id, row.kind, state, row.done, row.total, dict(row.params or {}), dict(row.summary or {}),
                   row.error, aware(row.created_at), aware(row.started_at), aware(row.finished_at))  # type: ignore[arg-type]


def _jobs(kind: str):
    return select(JobRow).options(defer(JobRow.result)).where(JobRow.kind == kind).order_by(JobRow.created_at.desc())


def get_job(session: Session, job_id: str) -> JobView:
    row = session.scalar(select(JobRow).options(defer(JobRow.result)).where(JobRow.id == job_id))
    if row is None:
        raise ServiceError(f"unknown job id '{job_id}'", 404)
    return _view(row)


def latest_job(session: Session, kind: str = SHORTLIST, state: str | None = None) -> JobView | None:
    """The newest job of this kind (in this state, if given)."""
    query = _jobs(kind)
    if state is not None:
        query = query.where(JobRow.state == state)
    row = session.scalar(query.limit(1))
    return _view(row) if row is not None else None


def active_job(session: Session, kind: str = SHORTLIST) -> JobView | None:
    """The job of this kind that is running now, if any (an interrupted one does not count)."""
    for row in session.scalars(_jobs(kind).where(JobRow.state.in_(ACTIVE)).limit(5)):
        view = _view(row)
        if view.active:
            return view
    return None


def _set(sessions: sessionmaker[Session], job_id: str, **values: Any) -> None:
    with sessions() as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
        session.commit()


def start_shortlist(sessions: sessionmaker[Session], sync: IndexSync, top: int, user_id: int | None) -> JobView:
    """Start shortlisting the whole corpus in the background; if a shortlist job is running, that one is returned."""
    if not 1 <= top <= MAX_SHORTLIST_TOP:
        raise ServiceError(f"the shortlist length must be from 1 to {MAX_SHORTLIST_TOP}, got {top}", 422)
    with _start_lock:
        with sessions() as session:
            running = active_job(session, SHORTLIST)
            if running is not None:
                return running
            now = utcnow()
            row = JobRow(id=secrets.token_hex(8), kind=SHORTLIST, state="queued", done=0, total=0,
                         params={"top": top}, user_id=user_id, created_at=now, heartbeat_at=now)
            session.add(row)
            session.commit()
            job_id = row.id
        threading.Thread(target=_run_shortlist, args=(sessions, sync, job_id, top), daemon=True,
                         name=f"techmatch-job-{job_id}").start()
    with sessions() as session:
        return get_job(session, job_id)


class _Progress:
    """on_progress(done, total) for the triage: written to the job's row at most twice a second."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str) -> None:
        self.sessions, self.job_id = sessions, job_id
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            _set(self.sessions, self.job_id, done=done, total=total, heartbeat_at=utcnow())


def _heartbeat(sessions: sessionmaker[Session], job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            _set(sessions, job_id, heartbeat_at=utcnow())
        except Exception:  # a busy database: the next beat will do
            log.warning("job %s: heartbeat not written", job_id, exc_info=True)


def compute_shortlist(sessions: sessionmaker[Session], sync: IndexSync, top: int,
                      on_progress: Any = None) -> list[ShortlistEntry]:
    """The shortlist as ``GET /shortlist`` computes it (the engine's, from the same per-version market pull):
    every stored need against every result, push lists to the stored enterprises and funds, the installed
    grader's strengths when there is one."""
    sync.catch_up()
    with sessions() as session:
        funds, enterprises = stored_funds(session), enterprises_by_id(session)
    return sync.engine.shortlist(top, funds, enterprises, on_progress=on_progress)


def _run_shortlist(sessions: sessionmaker[Session], sync: IndexSync, job_id: str, top: int) -> None:
    stop = threading.Event()
    try:
        _set(sessions, job_id, state="running", started_at=utcnow(), heartbeat_at=utcnow())
        threading.Thread(target=_heartbeat, args=(sessions, job_id, stop), daemon=True).start()
        entries = compute_shortlist(sessions, sync, top, _Progress(sessions, job_id))
        rows = [e.to_dict() for e in entries]
        summary = {"entries": len(rows), "needs": sync.engine.count("need"), "results": sync.engine.count("result"),
                   "by_field": dict(Counter(str(r.get("field") or "") for r in rows))}
        _set(sessions, job_id, state="done", result=rows, summary=summary, finished_at=utcnow())
    except Exception as exc:
        log.exception("job %s (shortlist) failed", job_id)
        known = isinstance(exc, (ServiceError, TechmatchError))
        message = exc.message if isinstance(exc, ServiceError) else str(exc) if known else \
            f"internal error ({type(exc).__name__}); it was logged"
        try:
            _set(sessions, job_id, state="failed", error=message, finished_at=utcnow())
        except Exception:
            log.exception("job %s: failure not recorded", job_id)
    finally:
        stop.set()


def shortlist_rows(session: Session, job_id: str) -> list[dict[str, Any]]:
    """The stored entries of a finished shortlist job (``ShortlistEntry.to_dict`` of each)."""
    row = session.get(JobRow, job_id)
    if row is None or row.kind != SHORTLIST:
        raise ServiceError(f"unknown shortlist job '{job_id}'", 404)
    return list(row.result or [])


def entries_from_rows(rows: Sequence[dict[str, Any]]) -> list[ShortlistEntry]:
    """Stored entries back as ShortlistEntry objects, so the download is written by triage/export.py."""
    entries = []
    for r in rows:
        extra = {name: r.get(name) for name in ("trl", "ip_status", "field", "institution")}
        entries.append(ShortlistEntry(
            rank=r["rank"], result_id=r["result_id"], title=r["title"], score=r["score"],
            market_pull=r["market_pull"], readiness=r["readiness"], top_need_ids=list(r.get("top_need_ids") or []),
            push=[PushTarget(**t) for t in r.get("push") or []], reasons=list(r.get("reasons") or []),
            record=Record(r["result_id"], r["title"], extra=extra),
        ))
    return entries
