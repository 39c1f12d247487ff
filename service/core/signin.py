"""Password sign-in behind the throttle, with its audit entries: the one way every password endpoint signs in.

Per account and per client address, refusals inside a sliding window lock the bucket (``throttle``); a locked
attempt is refused before the password is checked, whether or not the account exists, and an unknown name
costs one argon2 verification like a wrong password (``accounts.authenticate``), so neither the answer nor
its time tells which names exist.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.core import throttle
from service.core.accounts import SignInError, WebUser, authenticate
from service.core.audit import audit
from service.core.config import ServiceSettings


def throttle_rules(settings: ServiceSettings, username: str, address: str) -> dict[str, throttle.Limit]:
    """The buckets a password check of this account from this address counts against (the password page too)."""
    window = settings.signin_window_seconds
    return {f"account:{username.strip().lower()}": throttle.Limit(settings.signin_max_per_account, window),
            f"address:{address}": throttle.Limit(settings.signin_max_per_address, window)}


def sign_in(session: Session, settings: ServiceSettings, username: str, password: str, address: str) -> WebUser:
    """The user, or SignInError ('wrong', 'disabled') or throttle.Throttled; every outcome is audited."""
    rules = throttle_rules(settings, username, address)
    name = username.strip()[:64] or "-"
    try:
        throttle.check(session, rules)
    except throttle.Throttled:
        audit(session, name, "signin.throttled", "", address)
        raise
    try:
        user = authenticate(session, username, password)
    except SignInError as exc:
        throttle.record_failure(session, list(rules), settings.signin_window_seconds)
        audit(session, name, "signin.failed", exc.reason, address)
        raise
    throttle.clear(session, next(iter(rules)))
    audit(session, f"user:{user.username}", "signin.ok", "", address, account=user.enterprise)
    return user
