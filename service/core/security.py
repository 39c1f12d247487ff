"""API keys: random tokens (``secrets``) of which only the sha256 is stored; two roles, broker and enterprise.

Revocation is immediate in every worker: revoking a key (or disabling a user, changing a password) bumps the
``security_epoch`` row in the same transaction, and each worker reads that one row per request, dropping its
cache of known keys when it moved. Expiry needs no bump: a cached key's expiry is checked on every hit.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cachetools import TTLCache
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from recommender.errors import UserError
from service.core import throttle
from service.core.audit import CLI, Actor
from service.core.models import ApiKeyRow, SecurityEpochRow, utcnow

ROLES = ("broker", "enterprise")
KEY_PREFIX = "tm"
LAST_USED_EVERY = 60.0  # seconds: how often a worker writes a key's last use


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's public id, its role and (enterprise keys) the enterprise it speaks for."""

    key_id: str
    role: str
    enterprise: str | None = None

    @property
    def is_broker(self) -> bool:
        return self.role == "broker"


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bump_epoch(session: Session) -> None:
    """Every worker drops its cached keys on its next request (in the caller's transaction: commit it)."""
    moved = session.execute(update(SecurityEpochRow).where(SecurityEpochRow.id == 1)
                            .values(value=SecurityEpochRow.value + 1)).rowcount
    if not moved:
        session.add(SecurityEpochRow(id=1, value=1))


def read_epoch(session: Session) -> int:
    """The security epoch: one primary-key read."""
    return session.scalar(select(SecurityEpochRow.value).where(SecurityEpochRow.id == 1)) or 0


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at


def create_api_key(session: Session, role: str, enterprise: str | None = None, label: str | None = None,
                   expires_days: float | None = None, *, actor: Actor = CLI) -> str:
    """Store a new key's hash and return the key itself (shown once, never stored); audited."""
    if role not in ROLES:
        raise UserError(f"unknown role '{role}': use broker or enterprise")
    if role == "enterprise" and not (enterprise and enterprise.strip()):
        raise UserError("an enterprise key needs --enterprise <enterprise id>, e.g. --enterprise E001")
    if role == "broker" and enterprise:
        raise UserError("a broker key sees every enterprise: drop --enterprise")
    if expires_days is not None and expires_days <= 0:
        raise UserError("--expires-days must be positive")
    key_id = secrets.token_hex(4)
    token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None
    owner = enterprise.strip() if enterprise else None
    session.add(ApiKeyRow(id=key_id, key_hash=hash_key(token), role=role, expires_at=expires,
                          enterprise=owner, label=label))
    actor.log(session, "key.created", f"{key_id} ({role}{', ' + owner if owner else ''})", account=owner,
              commit=False)
    session.commit()
    return token


def _live_row(session: Session, token: str) -> ApiKeyRow | None:
    return session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(token),
                                                  ApiKeyRow.revoked_at.is_(None),
                                                  or_(ApiKeyRow.expires_at.is_(None), ApiKeyRow.expires_at > utcnow())))


def find_caller(session: Session, token: str) -> Caller | None:
    """The caller a key belongs to, or None for an unknown, revoked or expired key (compared by hash, so no
    timing leak of keys)."""
    row = _live_row(session, token)
    if row is None:
        return None
    return Caller(row.id, row.role, row.enterprise)


def list_api_keys(session: Session) -> list[ApiKeyRow]:
    """Every key, oldest first (only public parts: id, role, enterprise, label, dates)."""
    return list(session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)))


def revoke_api_key(session: Session, key_id: str, *, actor: Actor = CLI) -> ApiKeyRow:
    """Mark a key revoked by its public id (the part after 'tm_'); revoking twice keeps the first date. Every
    worker refuses it from its next request on (the epoch moves in the same transaction)."""
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise UserError(f"unknown key id '{key_id}': 'techmatch keys list' shows the ids")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        bump_epoch(session)
        actor.log(session, "key.revoked", row.id, account=row.enterprise, commit=False)
        session.commit()
    return row


class CallerCache:
    """Known keys remembered while the security epoch stands still, so a search costs one primary-key read
    (the epoch) instead of a key lookup; an unknown key is never cached, so a key created a second ago works
    at once. Unknown keys count against their address (``key:<ip>``) and lock it for a while (429)."""

    def __init__(self, sessions: sessionmaker[Session], key_limit: throttle.Limit | None = None,
                 size: int = 1024) -> None:
        self.sessions = sessions
        self.key_limit = key_limit
        self._known: TTLCache[str, tuple[Caller, datetime | None]] = TTLCache(maxsize=size, ttl=24 * 3600)
        self._used: dict[str, float] = {}
        self._epoch: int | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many keys are remembered now."""
        with self._lock:
            return len(self._known)

    def find(self, token: str, address: str = "") -> Caller | None:
        """The key's caller, or None (unknown, revoked, expired); raises throttle.Throttled for a locked address."""
        digest = hash_key(token)
        with self.sessions() as session:
            epoch = read_epoch(session)
            with self._lock:
                if epoch != self._epoch:
                    self._known.clear()
                    self._epoch = epoch
                hit = self._known.get(digest)
            if hit is not None and (hit[1] is None or hit[1] > utcnow()):
                self._touch(session, hit[0].key_id)
                return hit[0]
            bucket = f"key:{address}"
            if self.key_limit is not None:
                throttle.check(session, {bucket: self.key_limit})
            row = _live_row(session, token)
            if row is None:
                if self.key_limit is not None:
                    throttle.record_failure(session, [bucket], self.key_limit.window)
                return None
            caller = Caller(row.id, row.role, row.enterprise)
            with self._lock:
                self._known[digest] = (caller, _aware(row.expires_at))
            self._touch(session, caller.key_id)
        return caller

    def _touch(self, session: Session, key_id: str) -> None:
        """Write the key's last use, at most once a minute per worker."""
        now = time.monotonic()
        with self._lock:
            if now - self._used.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
                return
            self._used[key_id] = now
        session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=utcnow()))
        session.commit()
