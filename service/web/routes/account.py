"""Signing in and out, each role's home page, and changing one's own password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from service.api.deps import ServicesDep, client_address
from service.core import throttle
from service.core.accounts import SignInError, WeakPassword, close_session, open_session, set_password, verify_password
from service.core.audit import audit
from service.core.passwords import MIN_CHARS, PROBLEMS
from service.core.signin import sign_in, throttle_rules
from service.core.throttle import Throttled
from service.web.auth import SESSION_COOKIE, UserDep, actor, clear_cookie, set_cookie, signed_in, web_settings
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


@router.get("/account/password")
def password_page(request: Request, found: UserDep) -> Response:
    return render(request, "password.html", nav="password", min_chars=MIN_CHARS)


Secret = Annotated[str, Form(max_length=400)]


@router.post("/account/password")
def change_password(request: Request, services: ServicesDep, found: UserDep, current: Secret = "",
                    new: Secret = "", confirm: Secret = "") -> Response:
    """The current password (throttled like signing in), then the new one twice; other sessions end."""
    def refuse(status: int, error: str) -> Response:
        return render(request, "password.html", status=status, nav="password", min_chars=MIN_CHARS, error=error)

    address = client_address(request)
    user = found.user
    rules = throttle_rules(services.settings, user.username, address)
    with services.sessions() as session:
        try:
            throttle.check(session, rules)
        except Throttled as exc:
            response = refuse(429, f"密码错误次数过多，请在 {exc.retry_after} 秒后再试。")
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        if not verify_password(session, user.id, current):
            throttle.record_failure(session, list(rules), services.settings.signin_window_seconds)
            audit(session, user.actor_name, "signin.failed", "password page: wrong current password", address,
                  account=user.enterprise)
            return refuse(401, "当前密码不正确。")
        if new != confirm:
            return refuse(422, "两次输入的新密码不一致。")
        if new == current:
            return refuse(422, "新密码不能与当前密码相同。")
        try:
            set_password(session, user.username, new, actor=actor(request, found),
                         keep_token=request.cookies.get(SESSION_COOKIE))
        except WeakPassword as exc:
            return refuse(422, PROBLEMS[exc.code][1])
    return redirect(request, "/web/account/password", flash="password_changed")
