"""Errors on workbench pages answer an HTML page in Chinese, never JSON and never a traceback.

The app's JSON handlers (service/errors.py) stay as they are for the API: each is wrapped so that a
request under ``/web`` gets the same status with a page instead. A visitor who is not signed in is sent to
the sign-in page; a form without its CSRF token gets a 403 page that says so.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from service.web import labels
from service.web.auth import LoginRequired
from service.web.csrf import CsrfRefused

WEB_PREFIX = "/web"
Handler = Callable[[Request, Exception], Awaitable[Response]]


def is_web(request: Request) -> bool:
    path = request.url.path
    return path == WEB_PREFIX or path.startswith(WEB_PREFIX + "/")


async def error_page(request: Request, status: int, detail: str | None, title: str | None = None,
                     hint: str | None = None) -> HTMLResponse:
    from service.web.templating import render

    def page() -> HTMLResponse:
        return render(request, "error.html", status=status, status_code=status,
                      title=title or labels.STATUS_TITLES.get(status, "出错了"),
                      detail=labels.message(detail) if detail else None, hint=hint)

    try:
        return await run_in_threadpool(page)
    except Exception:  # the error page itself failed (e.g. the database is down): plain text, still no traceback
        return HTMLResponse(f"<h1>{status}</h1><p>{labels.STATUS_TITLES.get(status, '出错了')}</p>", status)


def _html_or_json(handler: Handler) -> Handler:
    async def wrapped(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        if not is_web(request) or response.status_code < 400:
            return response
        try:
            detail = json.loads(bytes(response.body)).get("detail")
        except (ValueError, AttributeError):
            detail = None
        return await error_page(request, response.status_code, detail if isinstance(detail, str) else None)
    return wrapped


async def _login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = f"{WEB_PREFIX}/login?next={quote(exc.next_url, safe='')}"
    if request.headers.get("HX-Request"):
        return HTMLResponse("", headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _csrf(request: Request, exc: Exception) -> Response:
    return await error_page(
        request, 403, None, title="表单已失效，操作未执行",
        hint="这个表单缺少有效的安全令牌（CSRF），可能来自已过期的页面或其他网站。请返回并刷新页面后重试。")


def install_web_errors(app: FastAPI) -> None:
    """Wrap every JSON handler the app has so far, and add the workbench's own two."""
    for error, handler in list(app.exception_handlers.items()):
        app.exception_handlers[error] = _html_or_json(handler)  # type: ignore[arg-type]
    app.add_exception_handler(LoginRequired, _login)
    app.add_exception_handler(CsrfRefused, _csrf)
