"""API keys: random tokens (``secrets``) of which only the sha256 is stored; two roles, broker and enterprise."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.models import ApiKeyRow
from techmatch.errors import UserError

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
    """The caller a key belongs to, or None for an unknown key (compared by hash, so no timing leak of keys)."""
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(token)))
    if row is None:
        return None
    return Caller(row.id, row.role, row.enterprise)
