"""Who is signed in: the session cookie looked up in the database, and the dependencies pages declare.

A page that needs a user raises ``LoginRequired`` for a visitor (answered by a redirect to the sign-in
page); a broker page answers an enterprise user with a 403 page. The cookie is HttpOnly, SameSite=Lax,
limited to ``/web`` and Secure when the request came over https.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from service.core.accounts import SignedIn, find_session
from service.core.audit import Actor
from service.core.errors import Forbidden
from service.web.settings import WebSettings

SESSION_COOKIE = "tm_session"
PRE_CSRF_COOKIE = "tm_csrf"  # the sign-in form's CSRF token, before there is a session (double submit)
FLASH_COOKIE = "tm_flash"
COOKIE_PATH = "/web"
_UNSET = object()


class LoginRequired(Exception):
    """The page needs a signed-in user; ``next_url`` is where to go back after signing in."""

    def __init__(self, next_url: str = "/web/") -> None:
        super().__init__(next_url)
        self.next_url = next_url


def signed_in(request: Request) -> SignedIn | None:
    """The request's live session (looked up once per request), or None."""
    cached = getattr(request.state, "signed_in", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    token = request.cookies.get(SESSION_COOKIE, "")
    found = None
    if token:
        with request.app.state.services.sessions() as session:
            found = find_session(session, token)
    request.state.signed_in = found
    return found


def require_user(request: Request) -> SignedIn:
    found = signed_in(request)
    if found is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path if request.method == "GET" else "/web/")
    return found


def require_broker(request: Request) -> SignedIn:
    found = require_user(request)
    if not found.user.is_broker:
        raise Forbidden("此页面仅供技术经理人使用；企业用户请在“我的需求”中查看匹配结果")
    return found


def require_admin(request: Request) -> SignedIn:
    """Admins are brokers with the admin flag (``techmatch users create --admin``, or the users page)."""
    found = require_broker(request)
    if not found.user.is_admin:
        raise Forbidden("此页面仅供平台管理员使用；请联系管理员为您开通")
    return found


UserDep = Annotated[SignedIn, Depends(require_user)]
BrokerDep = Annotated[SignedIn, Depends(require_broker)]
AdminDep = Annotated[SignedIn, Depends(require_admin)]


def actor(request: Request, found: SignedIn) -> Actor:
    """The signed-in user as the audit log names them, with their address and enterprise."""
    address = request.client.host if request.client else ""
    return Actor(found.user.actor_name, address, found.user.enterprise)


def web_settings(request: Request) -> WebSettings:
    settings = getattr(request.app.state, "web_settings", None)
    if settings is None:
        settings = request.app.state.web_settings = WebSettings()
    return settings


def secure(request: Request) -> bool:
    """Secure cookies: always, never, or (auto) over https: the request's scheme (a trusted proxy's
    X-Forwarded-Proto, TECHMATCH_TRUSTED_PROXIES) or a deployment served over https only (TECHMATCH_HTTPS_ONLY)."""
    policy = web_settings(request).secure_cookies
    if policy != "auto":
        return policy == "always"
    return request.url.scheme == "https" or request.app.state.services.settings.https_only


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=secure(request))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=secure(request))
