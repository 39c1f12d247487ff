"""Workbench accounts: users with argon2-hashed passwords (pwdlib), and server-side sign-in sessions.

A browser holds only a random session token (``secrets``) in its cookie; the database keeps the token's
sha256, the user it belongs to, when it expires and the session's CSRF token. API keys (``security``)
stay for scripts; a user here speaks with the same rights as a key of the same role and enterprise.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from recommender.errors import UserError
from service.core.audit import CLI, Actor
from service.core.models import UserRow, WebSessionRow, utcnow
from service.core.passwords import PROBLEMS, password_problem
from service.core.security import ROLES, Caller, bump_epoch

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
_hasher = PasswordHash((Argon2Hasher(),))
# verified when the username is unknown: a wrong name costs as long as a wrong password. Hashed once at import, so
# the first unknown name after a start does not cost a hash more than a wrong password (a timing tell).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(UserError):
    """An account that cannot be created or changed as asked (bad name, short password, unknown user)."""


class WeakPassword(AccountError):
    """A new password that breaks a strength rule; ``code`` is a key of ``passwords.PROBLEMS``."""

    def __init__(self, code: str) -> None:
        super().__init__(PROBLEMS[code][0])
        self.code = code


class SignInError(Exception):
    """Sign-in refused; ``reason`` is 'wrong' (unknown name or wrong password) or 'disabled'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebUser:
    """A signed-in user as the pages see them."""

    id: int
    username: str
    display_name: str
    role: str
    enterprise: str | None
    is_admin: bool = False  # a broker with the admin flag: the user, enterprise and key pages

    @property
    def is_broker(self) -> bool:
        return self.role == "broker"

    @property
    def actor_name(self) -> str:
        """How the audit log names this user."""
        return f"user:{self.username}"

    @property
    def caller(self) -> Caller:
        """The same rights as an API key of this role; ``key_id`` names the user in feedback rows."""
        return Caller(f"user:{self.id}", self.role, self.enterprise)

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username


def _user(row: UserRow) -> WebUser:
    return WebUser(row.id, row.username, row.display_name or "", row.role, row.enterprise,
                   bool(row.is_admin) and row.role == "broker")


def _check_password(password: str, username: str = "") -> None:
    problem = password_problem(password, username)
    if problem is not None:
        raise WeakPassword(problem)


def find_user(session: Session, username: str) -> UserRow | None:
    return session.scalar(select(UserRow).where(UserRow.username == username.strip()))


def _require_user(session: Session, username: str) -> UserRow:
    row = find_user(session, username)
    if row is None:
        raise AccountError(f"no user '{username}' (see 'techmatch users list')")
    return row


def create_user(session: Session, username: str, password: str, role: str, enterprise: str | None = None,
                display_name: str | None = None, *, is_admin: bool = False, actor: Actor = CLI) -> WebUser:
    """Store a new user (audited); the password is kept only as an argon2 hash. ``is_admin``: brokers only."""
    username = username.strip()
    if not USERNAME.match(username):
        raise AccountError(f"invalid username '{username}': 2-64 letters, digits or . _ @ -, starting with a "
                           "letter or digit")
    if role not in ROLES:
        raise AccountError(f"unknown role '{role}': use broker or enterprise")
    enterprise = enterprise.strip() if enterprise else None
    if role == "enterprise" and not enterprise:
        raise AccountError("an enterprise user needs --enterprise <enterprise id>, e.g. --enterprise E001")
    if role == "broker" and enterprise:
        raise AccountError("a broker sees every enterprise: drop --enterprise")
    if is_admin and role != "broker":
        raise AccountError("only a broker can be an admin")
    _check_password(password, username)
    if find_user(session, username) is not None:
        raise AccountError(f"user '{username}' exists already")
    row = UserRow(username=username, password_hash=_hasher.hash(password), role=role, enterprise=enterprise,
                  display_name=(display_name or "").strip(), disabled=False, is_admin=is_admin)
    session.add(row)
    actor.log(session, "user.created", f"{username} ({role}{', admin' if is_admin else ''})", account=enterprise,
              commit=False)
    session.commit()
    return _user(row)


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.username)))


def set_disabled(session: Session, username: str, disabled: bool = True, *, actor: Actor = CLI) -> UserRow:
    """Disable (or enable again) a user; disabling also ends every session they have open (audited)."""
    row = _require_user(session, username)
    row.disabled = disabled
    if disabled:
        session.execute(delete(WebSessionRow).where(WebSessionRow.user_id == row.id))
    bump_epoch(session)
    actor.log(session, "user.disabled" if disabled else "user.enabled", row.username, account=row.enterprise,
              commit=False)
    session.commit()
    return row


def set_admin(session: Session, username: str, is_admin: bool = True, *, actor: Actor = CLI) -> UserRow:
    """Give (or take) a broker the admin pages."""
    row = _require_user(session, username)
    if is_admin and row.role != "broker":
        raise AccountError("only a broker can be an admin")
    row.is_admin = is_admin
    actor.log(session, "user.admin" if is_admin else "user.not_admin", row.username, commit=False)
    session.commit()
    return row


def set_password(session: Session, username: str, password: str, *, actor: Actor = CLI,
                 keep_token: str | None = None) -> UserRow:
    """Give a user a new password and end their sessions (a changed password signs every browser out, except
    the one session ``keep_token`` names: the user who changed their own password stays signed in there)."""
    row = _require_user(session, username)
    _check_password(password, row.username)
    row.password_hash = _hasher.hash(password)
    ended = delete(WebSessionRow).where(WebSessionRow.user_id == row.id)
    if keep_token:
        ended = ended.where(WebSessionRow.token_hash != _token_hash(keep_token))
    session.execute(ended)
    bump_epoch(session)
    actor.log(session, "user.password_changed", row.username, account=row.enterprise, commit=False)
    session.commit()
    return row


def verify_password(session: Session, user_id: int, password: str) -> bool:
    """Whether this is the user's current password (the password page asks for it before a change)."""
    row = session.get(UserRow, user_id)
    return row is not None and _hasher.verify(password, row.password_hash)


def authenticate(session: Session, username: str, password: str) -> WebUser:
    """The user behind a name and password, or SignInError ('wrong' or 'disabled')."""
    row = find_user(session, username) if username.strip() else None
    if row is None:
        _hasher.verify(password, _DUMMY_HASH)
        raise SignInError("wrong")
    ok, new_hash = _hasher.verify_and_update(password, row.password_hash)
    if not ok:
        raise SignInError("wrong")
    if row.disabled:
        raise SignInError("disabled")
    if new_hash is not None:  # the hashing parameters moved on since this hash was made
        row.password_hash = new_hash
    row.last_login_at = utcnow()
    session.commit()
    return _user(row)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(session: Session, user: WebUser, hours: float) -> str:
    """A new sign-in session for the user: returns the token for the cookie (only its hash is stored)."""
    now = utcnow()
    session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))  # expired ones go on the way
    token = secrets.token_urlsafe(32)
    session.add(WebSessionRow(token_hash=_token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                              created_at=now, expires_at=now + timedelta(hours=hours)))
    session.commit()
    return token


@dataclass(frozen=True)
class SignedIn:
    """A live session: who it is and the CSRF token its forms carry."""

    user: WebUser
    csrf_token: str


def find_session(session: Session, token: str) -> SignedIn | None:
    """The live session of this cookie token, or None (unknown, expired, or its user disabled)."""
    if not token:
        return None
    found = session.execute(
        select(WebSessionRow.csrf_token, UserRow)
        .join(UserRow, UserRow.id == WebSessionRow.user_id)
        .where(WebSessionRow.token_hash == _token_hash(token), WebSessionRow.expires_at > utcnow(),
               UserRow.disabled.is_(False))
    ).first()
    if found is None:
        return None
    return SignedIn(_user(found[1]), found[0])


def close_session(session: Session, token: str) -> None:
    """Sign out: the token stops working at once."""
    session.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == _token_hash(token)))
    session.commit()

