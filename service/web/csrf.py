"""CSRF protection for every form of the workbench.

Each signed-in session has its own random token, rendered into every form (and sent by htmx as the
``X-CSRF-Token`` header); before signing in, the sign-in form's token is a random cookie it must match
(double submit). Any POST under ``/web`` without the right token is refused with a 403 page, before the
route runs.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from service.web.auth import PRE_CSRF_COOKIE, signed_in

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class CsrfRefused(Exception):
    """A form came back without the token of this session (forged, or from a page older than the session)."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def page_token(request: Request) -> str:
    """The token a page renders into its forms; a visitor without one is given a fresh one (set as a cookie)."""
    found = signed_in(request)
    if found is not None:
        return found.csrf_token
    token = request.cookies.get(PRE_CSRF_COOKIE) or getattr(request.state, "new_pre_csrf", None)
    if not token:
        token = request.state.new_pre_csrf = new_token()
    return token


async def csrf_protect(request: Request) -> None:
    """Router dependency: refuse an unsafe request whose token does not match (compared in constant time)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if not sent:
        form = await request.form()  # parsed once: the route's own form fields read the same parse
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    found = await run_in_threadpool(signed_in, request)
    expected = found.csrf_token if found is not None else request.cookies.get(PRE_CSRF_COOKIE)
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused()
