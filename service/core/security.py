"""API keys: random tokens (``secrets``) of which only the sha256 is stored; two roles, broker and enterprise."""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recommender.errors import UserError
from service.core.models import ApiKeyRow, utcnow

ROLES = ("broker", "enterprise")
KEY_PREFIX = "tm"


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


def create_api_key(session: Session, role: str, enterprise: str | None = None, label: str | None = None) -> str:
    """Store a new key's hash and return the key itself (shown once, never stored)."""
    if role not in ROLES:
        raise UserError(f"unknown role '{role}': use broker or enterprise")
    if role == "enterprise" and not (enterprise and enterprise.strip()):
        raise UserError("an enterprise key needs --enterprise <enterprise id>, e.g. --enterprise E001")
    if role == "broker" and enterprise:
        raise UserError("a broker key sees every enterprise: drop --enterprise")
    key_id = secrets.token_hex(4)
    token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    session.add(ApiKeyRow(id=key_id, key_hash=hash_key(token), role=role,
                          enterprise=enterprise.strip() if enterprise else None, label=label))
    session.commit()
    return token


def find_caller(session: Session, token: str) -> Caller | None:
    """The caller a key belongs to, or None for an unknown or revoked key (compared by hash, so no timing leak
    of keys)."""
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(token),
                                                 ApiKeyRow.revoked_at.is_(None)))
    if row is None:
        return None
    return Caller(row.id, row.role, row.enterprise)


def list_api_keys(session: Session) -> list[ApiKeyRow]:
    """Every key, oldest first (only public parts: id, role, enterprise, label, dates)."""
    return list(session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)))


def revoke_api_key(session: Session, key_id: str) -> ApiKeyRow:
    """Mark a key revoked by its public id (the part after 'tm_'); revoking twice keeps the first date."""
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise UserError(f"unknown key id '{key_id}': 'techmatch keys list' shows the ids")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


class CallerCache:
    """Known keys remembered for a minute, so a search does not open a database session just to check its key.

    An unknown key is never cached, so a key created a second ago works at once; a revoked key stops working
    in a running service within the cache's minute."""

    def __init__(self, sessions: sessionmaker[Session], ttl_seconds: float = 60.0, size: int = 1024) -> None:
        self.sessions = sessions
        self._known: TTLCache[str, Caller] = TTLCache(maxsize=size, ttl=ttl_seconds)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many keys are remembered now."""
        with self._lock:
            return len(self._known)

    def find(self, token: str) -> Caller | None:
        digest = hash_key(token)
        with self._lock:
            caller = self._known.get(digest)
        if caller is not None:
            return caller
        with self.sessions() as session:
            caller = find_caller(session, token)
        if caller is not None:
            with self._lock:
                self._known[digest] = caller
        return caller
