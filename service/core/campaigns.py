"""Review campaigns (issue 20): brokers read a set of results one at a time and decide 可转化 / 不可转化 / 跳过;
every decision re-prioritises what is read next.

The model is ``recommender.review`` (features, classifier, BMI query order, knee stopping rule); this module only
keeps campaigns, decisions and holds in the database and calls it. Each serving process keeps one model per
campaign (``CampaignModels``) and refits it in a background thread after every decision, so a request never
waits on a fit; a process that did not see a decision (another worker, or after a restart) notices it on its next
read of the campaign (decision count and newest id) and refits too. The database is the truth: the decided and
held results are read from it at every pick, so a stale model can only change the order, never show a result
twice. Taking a hold is one conditional row write (an UPDATE of an expired hold, or an INSERT that the primary
key refuses when someone else got there first), atomic on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, sessionmaker

from recommender.review.loop import ReviewLoop
from recommender.review.pool import pool_features
from recommender.review.stopping import KNEE_MIN_READS, knee_stop, slope_ratio
from service.core.audit import audit
from service.core.config import MAX_NOTE_CHARS
from service.core.errors import NotFound, ServiceError
from service.core.models import CampaignDecisionRow, CampaignHoldRow, CampaignRow, ResultRow, utcnow
from service.core.security import Caller
from service.core.sync import IndexSync

log = logging.getLogger("techmatch.service")

SCOPES = ("all", "field", "institution", "since")
DECISIONS = ("transferable", "not_transferable", "skip")
LABELS = {"transferable": 1, "not_transferable": 0}
MAX_NAME_CHARS = 200
MAX_NEXT = 20
MAX_MODELS = 4  # campaigns whose model a process keeps (30,000 results: ~100 MB of features each)
STOPPING_METHOD = ("knee method (Cormack and Grossman, SIGIR 2016) for when to stop; recall estimated from the "
                   "model's calibrated probabilities of the unread results (sum and Poisson-binomial 95% interval)")


def aware(moment: datetime | None) -> datetime | None:
    """A stored time with its zone (SQLite gives times back without one; they are stored in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


# -- the model of a campaign, per process ---------------------------------------------------------------------
@dataclass
class ModelState:
    """One campaign's model in this process: the loop (None until built), what it learnt from, and its progress."""

    campaign_id: int
    state: str = "queued"  # queued, building, refitting, ready, failed
    step: str = ""
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    loop: ReviewLoop | None = None
    features: Any = None
    market: Any = None  # the needs' pull the features were built from (None: no needs stored)
    applied: tuple[int, int] = (-1, -1)  # (decisions, newest decision id) the loop learnt from
    estimate: dict[str, Any] | None = None
    fit_seconds: float = 0.0
    error: str | None = None
    dirty: bool = False
    running: bool = False

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def busy(self) -> bool:
        return self.state in ("queued", "building", "refitting")

    @property
    def percent(self) -> int:
        if self.state == "ready":
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "step": self.step, "percent": self.percent,
                "seconds": round(self.seconds, 2) if self.busy else round(self.fit_seconds, 3),
                "decisions_learnt": max(self.applied[0], 0), "error": self.error}


class CampaignModels:
    """Every campaign's model in this process, each refit by a background thread of its own when decisions move."""

    def __init__(self, sessions: sessionmaker[Session], sync: IndexSync) -> None:
        self.sessions, self.sync = sessions, sync
        self._states: dict[int, ModelState] = {}
        self._lock = threading.Lock()

    def state(self, campaign_id: int, signature: tuple[int, int] | None = None) -> ModelState:
        """The campaign's model; (re)fitting starts in the background when it is missing or behind ``signature``."""
        with self._lock:
            st = self._states.pop(campaign_id, None)
            if st is None:
                st = ModelState(campaign_id)
                stale = True
                idle = [cid for cid, other in self._states.items() if not other.running]
                for cid in idle[:max(0, len(self._states) - MAX_MODELS + 1)]:  # the least recently used go
                    del self._states[cid]
            else:
                stale = st.state == "failed" or (signature is not None and signature != st.applied and not st.dirty)
            self._states[campaign_id] = st  # last: the most recently used
        if stale:
            self.refit(campaign_id)
        return st

    def refit(self, campaign_id: int) -> None:
        """Ask for a refit (after a decision); returns at once. Decisions arriving meanwhile are coalesced."""
        with self._lock:
            st = self._states.setdefault(campaign_id, ModelState(campaign_id))
            st.dirty = True
            if st.running:
                return
            st.running = True
        threading.Thread(target=self._run, args=(st,), daemon=True, name=f"techmatch-review-{campaign_id}").start()

    def forget(self, campaign_id: int) -> None:
        with self._lock:
            self._states.pop(campaign_id, None)

    def _run(self, st: ModelState) -> None:
        while True:
            with self._lock:
                if not st.dirty:
                    st.running = False
                    return
                st.dirty = False
            try:
                self._fit(st)
            except Exception as exc:  # shown on the page; the next decision or read tries again
                log.exception("campaign %s: model not refit", st.campaign_id)
                st.state, st.error = "failed", f"{type(exc).__name__}: {exc}"

    def _fit(self, st: ModelState) -> None:
        st.started, st.error = time.monotonic(), None
        if st.features is None:
            st.state, st.step, st.done, st.total = "building", "market", 0, 0
            st.features = self._features(st)
        st.state, st.step, st.done, st.total = "refitting", "fit", 1, 3
        with self.sessions() as session:
            rows = session.execute(select(CampaignDecisionRow.id, CampaignDecisionRow.result_id,
                                          CampaignDecisionRow.decision)
                                   .where(CampaignDecisionRow.campaign_id == st.campaign_id)
                                   .order_by(CampaignDecisionRow.id)).all()
        signature = (len(rows), max((r[0] for r in rows), default=0))
        if st.loop is not None and signature == st.applied:  # asked twice for the same decisions
            st.state, st.step = "ready", ""
            return
        loop = ReviewLoop(st.features)  # a fresh loop: a changed or taken-back decision leaves no trace
        known = loop.row
        loop.decide_many((rid, LABELS[d]) for _, rid, d in rows if d in LABELS and rid in known)
        st.done = 2
        loop.refit()
        st.estimate = loop.estimate().to_dict()
        st.fit_seconds = time.monotonic() - st.started
        st.loop, st.applied, st.done = loop, signature, 3
        st.state, st.step = "ready", ""

    def _features(self, st: ModelState):
        """The pool's features, seeded by the current shortlist's order (the same market pull, per index version)."""
        with self.sessions() as session:
            pool = session.scalar(select(CampaignRow.pool).where(CampaignRow.id == st.campaign_id)) or []
        self.sync.catch_up()
        engine = self.sync.engine
        records = engine.records("result")
        pool = [rid for rid in pool if rid in records]
        if not pool:
            raise ServiceError("none of the campaign's results is stored any more", 409)
        market = None
        if engine.count("need"):
            def progress(done: int, total: int) -> None:
                st.done, st.total = done, total + 1
            market = engine.market_pull(on_progress=progress)
        st.market = market
        st.step = "features"
        return pool_features(pool, records, market)


# -- campaigns ---------------------------------------------------------------------------------------------
def _who(caller: Caller) -> str:
    return caller.key_id if caller.key_id.startswith("user:") else f"key:{caller.key_id}"


def scope_pool(session: Session, scope: str, value: str) -> list[str]:
    """The ids of the stored results a scope covers, in id order."""
    query = select(ResultRow.id).order_by(ResultRow.id)
    value = (value or "").strip()
    if scope not in SCOPES:
        raise ServiceError(f"unknown scope '{scope}': use one of {', '.join(SCOPES)}", 422)
    if scope != "all" and not value:
        raise ServiceError(f"the scope '{scope}' needs a value (a field, an institution or a date)", 422)
    if scope == "field":
        query = query.where(ResultRow.field == value)
    elif scope == "institution":
        query = query.where(ResultRow.institution == value)
    elif scope == "since":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ServiceError(f"the scope 'since' needs a date as YYYY-MM-DD, got '{value[:40]}'", 422) from None
        query = query.where(ResultRow.created_at >= datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    return list(session.scalars(query))


def create_campaign(session: Session, caller: Caller, name: str, scope: str = "all", value: str = "",
                    address: str = "") -> CampaignRow:
    """A new open campaign over the results its scope covers now (later results do not join it)."""
    name = (name or "").strip()
    if not name:
        raise ServiceError("a campaign needs a name", 422)
    if len(name) > MAX_NAME_CHARS:
        raise ServiceError(f"the name has {len(name)} characters; the limit is {MAX_NAME_CHARS}", 422)
    pool = scope_pool(session, scope, value)
    if not pool:
        raise ServiceError("no stored result falls in this scope: nothing to review", 409)
    row = CampaignRow(name=name, scope=scope, scope_value=(value or "").strip() if scope != "all" else "",
                      pool=pool, pool_size=len(pool), status="open", created_by=_who(caller), created_at=utcnow())
    session.add(row)
    session.flush()
    audit(session, _who(caller), "campaign.create", f"campaign {row.id} '{name}': {scope} {row.scope_value} "
          f"({len(pool)} results)", address, commit=False)
    session.commit()
    return row


def get_campaign(session: Session, campaign_id: int) -> CampaignRow:
    row = session.scalar(select(CampaignRow).options(defer(CampaignRow.pool)).where(CampaignRow.id == campaign_id))
    if row is None:
        raise NotFound(f"unknown campaign id '{campaign_id}'")
    return row


def list_campaigns(session: Session, offset: int = 0, limit: int = 50) -> tuple[list[CampaignRow], int]:
    total = session.scalar(select(func.count()).select_from(CampaignRow)) or 0
    rows = session.scalars(select(CampaignRow).options(defer(CampaignRow.pool)).order_by(CampaignRow.id.desc())
                           .offset(offset).limit(limit)).all()
    return list(rows), int(total)


def signature(session: Session, campaign_id: int) -> tuple[int, int]:
    """(decisions, newest decision id): what a model must have learnt from to be current."""
    count, newest = session.execute(select(func.count(), func.max(CampaignDecisionRow.id))
                                    .where(CampaignDecisionRow.campaign_id == campaign_id)).one()
    return int(count or 0), int(newest or 0)


def decisions(session: Session, campaign_id: int) -> list[CampaignDecisionRow]:
    """Every decision of a campaign in reading order (oldest first)."""
    return list(session.scalars(select(CampaignDecisionRow).where(CampaignDecisionRow.campaign_id == campaign_id)
                                .order_by(CampaignDecisionRow.id)))


@dataclass
class CampaignStatus:
    """Where a campaign stands: counts from the database, the gain curve, the model's estimate and the knee rule."""

    pool: int
    decided: int
    read: int  # decided transferable or not (skips are not reads of the gain curve)
    found: int
    skipped: int
    gains: list[int]
    estimate: dict[str, Any] | None
    stop: bool
    stop_reason: str
    slope_ratio: float
    method: str = STOPPING_METHOD

    @property
    def remaining(self) -> int:
        return self.pool - self.decided

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "decided": self.decided, "read": self.read, "found": self.found,
                "skipped": self.skipped, "remaining": self.remaining, "gains": self.gains,
                "estimate": self.estimate, "stop": self.stop, "stop_reason": self.stop_reason,
                "slope_ratio": round(self.slope_ratio, 3), "method": self.method}


def campaign_status(session: Session, campaign: CampaignRow, model: ModelState | None) -> CampaignStatus:
    rows = decisions(session, campaign.id)
    labels = [LABELS[r.decision] for r in rows if r.decision in LABELS]
    gains, total = [], 0
    for y in labels:
        total += y
        gains.append(total)
    found, read = total, len(labels)
    remaining = campaign.pool_size - len(rows)
    ratio = slope_ratio(gains) if gains else 0.0
    if remaining <= 0:
        stop, reason = True, "every result of the campaign has been decided"
    elif knee_stop(gains):
        stop, reason = True, (f"knee method: the gain curve has flattened (slope ratio {ratio:.1f} >= "
                              f"{156 - min(found, 150)} after {read} reads)")
    elif read < KNEE_MIN_READS:
        stop, reason = False, f"knee method: not before {KNEE_MIN_READS} reads ({read} so far)"
    elif found == 0:
        stop, reason = False, "knee method: no transferable result found yet"
    else:
        stop, reason = False, (f"knee method: slope ratio {ratio:.1f}, stopping is reasonable from "
                               f"{156 - min(found, 150)}")
    estimate = model.estimate if model is not None and model.estimate is not None and found else None
    return CampaignStatus(campaign.pool_size, len(rows), read, found, len(rows) - read, gains, estimate, stop,
                          reason, ratio)


# -- reading: the next results, held for the reader ------------------------------------------------------------
def _take(session: Session, campaign_id: int, result_id: str, holder: str, now: datetime, until: datetime) -> bool:
    """Hold one result for ``holder``: True when it was free (or expired, or already theirs). One row write."""
    taken = session.execute(
        update(CampaignHoldRow)
        .where(CampaignHoldRow.campaign_id == campaign_id, CampaignHoldRow.result_id == result_id,
               or_(CampaignHoldRow.until <= now, CampaignHoldRow.holder == holder))
        .values(holder=holder, until=until)).rowcount
    if taken:
        session.commit()
        return True
    try:
        session.add(CampaignHoldRow(campaign_id=campaign_id, result_id=result_id, holder=holder, until=until))
        session.commit()
        return True
    except IntegrityError:  # someone else holds it
        session.rollback()
        return False


def next_results(session: Session, models: CampaignModels, campaign: CampaignRow, caller: Caller, k: int = 1,
                 hold_seconds: float = 300.0) -> tuple[list[str], ModelState]:
    """Up to ``k`` undecided results for this reader, best first by the model, each held for ``hold_seconds``:
    their own live holds first (a reload shows the same result), then new ones nobody else holds."""
    if not 1 <= k <= MAX_NEXT:
        raise ServiceError(f"k must be from 1 to {MAX_NEXT}, got {k}", 422)
    model = models.state(campaign.id, signature(session, campaign.id))
    if campaign.status != "open":
        return [], model
    holder = _who(caller)
    now = utcnow()
    until = now + timedelta(seconds=hold_seconds)
    decided = set(session.scalars(select(CampaignDecisionRow.result_id)
                                  .where(CampaignDecisionRow.campaign_id == campaign.id)))
    live = session.execute(select(CampaignHoldRow.result_id, CampaignHoldRow.holder)
                           .where(CampaignHoldRow.campaign_id == campaign.id, CampaignHoldRow.until > now)
                           .order_by(CampaignHoldRow.until)).all()
    chosen = [rid for rid, who in live if who == holder and rid not in decided][:k]
    for rid in chosen:  # still reading: the hold is renewed
        _take(session, campaign.id, rid, holder, now, until)
    loop = model.loop
    if loop is None or len(chosen) >= k:
        return chosen, model
    excluded = decided | {rid for rid, who in live if who != holder} | set(chosen)
    for _ in range(5):
        candidates = loop.next_ids(k - len(chosen) + 5, held=excluded)
        if not candidates:
            break
        for rid in candidates:
            excluded.add(rid)
            if _take(session, campaign.id, rid, holder, now, until):
                if session.scalar(select(CampaignDecisionRow.id).where(  # decided meanwhile: let it go
                        CampaignDecisionRow.campaign_id == campaign.id, CampaignDecisionRow.result_id == rid)):
                    release(session, campaign.id, rid, holder)
                    continue
                chosen.append(rid)
                if len(chosen) >= k:
                    return chosen, model
    return chosen, model


def release(session: Session, campaign_id: int, result_id: str, holder: str) -> None:
    session.execute(delete(CampaignHoldRow).where(CampaignHoldRow.campaign_id == campaign_id,
                                                  CampaignHoldRow.result_id == result_id,
                                                  CampaignHoldRow.holder == holder))
    session.commit()


def held_by_others(session: Session, campaign_id: int, caller: Caller) -> set[str]:
    """Results someone else is reading now."""
    return set(session.scalars(select(CampaignHoldRow.result_id).where(
        CampaignHoldRow.campaign_id == campaign_id, CampaignHoldRow.until > utcnow(),
        CampaignHoldRow.holder != _who(caller))))


def decide(session: Session, models: CampaignModels, campaign: CampaignRow, caller: Caller, result_id: str,
           decision: str, note: str = "", address: str = "") -> CampaignDecisionRow:
    """Record a decision (the latest on a result wins), release the reader's hold, and refit in the background."""
    if decision not in DECISIONS:
        raise ServiceError(f"unknown decision '{decision}': use one of {', '.join(DECISIONS)}", 422)
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ServiceError(f"the note has {len(note)} characters; the limit is {MAX_NOTE_CHARS}", 422)
    if campaign.status != "open":
        raise ServiceError(f"campaign {campaign.id} is closed: reopen it to decide", 409)
    in_pool = session.scalar(select(CampaignRow.pool).where(CampaignRow.id == campaign.id)) or []
    if result_id not in set(in_pool):
        raise NotFound(f"result '{result_id}' is not in campaign {campaign.id}")
    holder = _who(caller)
    for attempt in range(2):
        try:
            session.execute(delete(CampaignDecisionRow).where(CampaignDecisionRow.campaign_id == campaign.id,
                                                              CampaignDecisionRow.result_id == result_id))
            row = CampaignDecisionRow(campaign_id=campaign.id, result_id=result_id, decision=decision, note=note,
                                      who=holder, created_at=utcnow())
            session.add(row)
            session.execute(delete(CampaignHoldRow).where(CampaignHoldRow.campaign_id == campaign.id,
                                                          CampaignHoldRow.result_id == result_id))
            session.flush()
            audit(session, holder, "review.decision", f"campaign {campaign.id}: {result_id} {decision}"
                  + (f" ({note[:200]})" if note else ""), address, commit=False)
            session.commit()
            break
        except IntegrityError:  # two decisions on one result at the same moment: the later one wins
            session.rollback()
            if attempt:
                raise ServiceError("the result was decided by someone else at the same moment; try again",
                                   409) from None
    models.refit(campaign.id)
    return row


def transferable(session: Session, campaign_id: int) -> list[CampaignDecisionRow]:
    """The results decided transferable, in reading order: what the campaign's push lists and exports carry."""
    return [r for r in decisions(session, campaign_id) if r.decision == "transferable"]


def campaign_decision_of(session: Session, result_id: str) -> list[tuple[CampaignRow, CampaignDecisionRow]]:
    """Every campaign decision on one result (its result page shows them beside the push list)."""
    rows = session.execute(select(CampaignRow, CampaignDecisionRow).options(defer(CampaignRow.pool))
                           .join(CampaignDecisionRow, and_(CampaignDecisionRow.campaign_id == CampaignRow.id))
                           .where(CampaignDecisionRow.result_id == result_id)
                           .order_by(CampaignDecisionRow.id.desc())).all()
    return [(c, d) for c, d in rows]


def latest_decisions(session: Session, result_ids: Sequence[str]) -> dict[str, str]:
    """The newest campaign decision on each of these results (the shortlist table shows it beside each row)."""
    if not result_ids:
        return {}
    rows = session.execute(select(CampaignDecisionRow.result_id, CampaignDecisionRow.decision)
                           .where(CampaignDecisionRow.result_id.in_(list(result_ids)))
                           .order_by(CampaignDecisionRow.id)).all()
    return {rid: decision for rid, decision in rows}


def scope_choices(session: Session) -> dict[str, list[str]]:
    """The fields and institutions a campaign can be scoped to."""
    def distinct(column) -> list[str]:
        return [v for v in session.scalars(select(column).where(column.is_not(None)).distinct().order_by(column))
                if v]
    return {"field": distinct(ResultRow.field), "institution": distinct(ResultRow.institution)}


def export_entries(session: Session, sync: IndexSync, campaign_id: int, model: ModelState | None = None,
                   push_k: int = 10) -> Sequence[Any]:
    """The transferable results as shortlist entries (rank = reading order), each with its push list and reasons,
    so ``recommender.triage.export`` writes the campaign's CSV and Excel as it writes the shortlist's."""
    from recommender.triage.readiness import readiness, readiness_reason
    from recommender.triage.shortlist import ShortlistEntry
    from service.core.partners import enterprises_by_id, stored_funds

    engine = sync.engine
    records = engine.records("result")
    funds, enterprises = stored_funds(session), enterprises_by_id(session)
    entries = []
    for rank, row in enumerate(transferable(session, campaign_id), 1):
        record = records.get(row.result_id)
        if record is None:
            continue
        push = engine.push_result(row.result_id, funds, push_k, enterprises) if (engine.count("need") or funds) \
            else []
        reasons = [f"review: transferable ({row.who}, {aware(row.created_at):%Y-%m-%d %H:%M})"
                   + (f": {row.note}" if row.note else ""), readiness_reason(record)]
        pull = float(model.market.pull.get(row.result_id, 0.0)) if model is not None and model.market else 0.0
        entries.append(ShortlistEntry(rank=rank, result_id=row.result_id, title=record.title, score=1.0,
                                      market_pull=pull, readiness=readiness(record),
                                      top_need_ids=[t.need_id for t in push if t.kind == "enterprise" and t.need_id],
                                      push=push, reasons=[r for r in reasons if r], record=record))
    return entries
