"""A sliding-window throttle on refused sign-ins and API keys, kept in the database.

Why a table and not a library: ``limits`` (the well-kept choice, behind slowapi) stores its windows in memory,
Redis, Memcached or MongoDB, none of which this service runs; a per-process memory would let ``--workers N``
multiply an attacker's rate by N. A bucket (``account:<name>``, ``address:<ip>``, ``key:<ip>``) is locked
while it holds ``limit`` failures inside the last ``window`` seconds; the lock lifts when the oldest of them
leaves the window, so the wait is announced exactly (Retry-After). Only refusals are written: a locked
attempt is answered without checking the password and records nothing, so an attack cannot grow the table
faster than the limits allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.core.models import AuthFailureRow, utcnow


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` failures in ``window`` seconds."""

    limit: int
    window: float


class Throttled(Exception):
    """The bucket is locked; ``retry_after`` whole seconds until it opens."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)  # SQLite hands back naive datetimes


def retry_after(session: Session, bucket: str, rule: Limit, now: datetime | None = None) -> int:
    """Seconds until the bucket takes another attempt (0: open now)."""
    now = now or utcnow()
    since = now - timedelta(seconds=rule.window)
    count = session.scalar(select(func.count()).select_from(AuthFailureRow)
                           .where(AuthFailureRow.bucket == bucket, AuthFailureRow.at > since)) or 0
    if count < rule.limit:
        return 0
    # open again when failures drop below the limit: when the (count - limit + 1)-th oldest leaves the window
    pivot = session.scalar(select(AuthFailureRow.at).where(AuthFailureRow.bucket == bucket, AuthFailureRow.at > since)
                           .order_by(AuthFailureRow.at).offset(count - rule.limit).limit(1))
    if pivot is None:
        return 0
    return max(1, math.ceil((_aware(pivot) + timedelta(seconds=rule.window) - now).total_seconds()))


def check(session: Session, rules: dict[str, Limit]) -> None:
    """Raise Throttled (the longest wait) if any of these buckets is locked."""
    wait = max((retry_after(session, bucket, rule) for bucket, rule in rules.items()), default=0)
    if wait:
        raise Throttled(wait)


def record_failure(session: Session, buckets: list[str], keep_seconds: float) -> None:
    """Count one failure in each bucket (and forget failures older than any window); commits."""
    now = utcnow()
    session.execute(delete(AuthFailureRow).where(AuthFailureRow.at < now - timedelta(seconds=keep_seconds)))
    session.add_all([AuthFailureRow(bucket=bucket, at=now) for bucket in buckets])
    session.commit()


def clear(session: Session, bucket: str) -> None:
    """Forget a bucket's failures (an account after its right password); commits."""
    session.execute(delete(AuthFailureRow).where(AuthFailureRow.bucket == bucket))
    session.commit()
