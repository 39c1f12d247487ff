"""Signing in and out, and each role's home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from service.api.deps import ServicesDep, client_address
from service.core.accounts import SignInError, close_session, open_session
from service.core.signin import sign_in
from service.core.throttle import Throttled
from service.web.auth import SESSION_COOKIE, clear_cookie, set_cookie, signed_in, web_settings
from service.web.routes import web_router
from service.web.templating import redirect, render

router = web_router()
root = APIRouter(include_in_schema=False)

SIGN_IN_ERRORS = {
    "wrong": "用户名或密码不正确，请重新输入。",
    "disabled": "该账号已停用，无法登录。如需恢复，请联系平台管理员。",
}


def _home(found) -> str:
    return "/web/dashboard" if found.user.is_broker else "/web/needs"


def _safe_next(target: str | None) -> str | None:
    """Only a page of the workbench itself (no open redirect to another site)."""
    if target and target.startswith("/web") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@root.get("/")
def root_page() -> RedirectResponse:
    return RedirectResponse("/web/", status_code=307)


@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    found = signed_in(request)
    if found is None:
        return RedirectResponse("/web/login", status_code=303)
    return RedirectResponse(_home(found), status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    found = signed_in(request)
    if found is not None:
        return RedirectResponse(_safe_next(next) or _home(found), status_code=303)
    return render(request, "login.html", next=_safe_next(next) or "", username="")


@router.post("/login")
def login(request: Request, services: ServicesDep, username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=400)] = "",
          next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    with services.sessions() as session:
        try:
            user = sign_in(session, services.settings, username, password, client_address(request))
        except Throttled as exc:
            minutes = max(1, round(exc.retry_after / 60))
            response = render(request, "login.html", status=429, username=username, next=_safe_next(next) or "",
                              error=f"登录失败次数过多，账号已暂时锁定。请在约 {minutes} 分钟"
                                    f"（{exc.retry_after} 秒）后再试；如忘记密码，请联系平台管理员。")
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except SignInError as exc:
            return render(request, "login.html", status=401 if exc.reason == "wrong" else 403,
                          error=SIGN_IN_ERRORS[exc.reason], username=username, next=_safe_next(next) or "")
        hours = web_settings(request).session_hours
        token = open_session(session, user, hours)
    response = RedirectResponse(_safe_next(next) or ("/web/dashboard" if user.is_broker else "/web/needs"),
                                status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(hours * 3600))
    return response


@router.post("/logout")
def logout(request: Request, services: ServicesDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with services.sessions() as session:
            close_session(session, token)
    response = redirect(request, "/web/login", flash="signed_out")
    clear_cookie(request, response, SESSION_COOKIE)
    return response
