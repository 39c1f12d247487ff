"""Rendering pages: one Jinja2 environment (autoescaped), the context every page gets, flash messages."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse

from service.web import labels
from service.web.auth import FLASH_COOKIE, PRE_CSRF_COOKIE, clear_cookie, set_cookie, signed_in
from service.web.csrf import page_token
from service.web.highlight import highlight

HERE = Path(__file__).parent
STATIC = HERE / "static"
BEIJING = timezone(timedelta(hours=8))

# Short notices shown once after a redirect (the cookie carries only the code, never text).
FLASH = {
    "signed_out": "您已安全退出。",
    "need_created": "需求已发布，下面是为它匹配的科技成果。",
    "need_saved": "需求已保存，匹配结果已按新内容更新。",
    "job_started": "短名单已开始计算，进度见下方。",
    "user_disabled": "用户已停用，其所有登录已立即失效。",
    "user_enabled": "用户已恢复启用。",
    "key_revoked": "密钥已吊销，所有服务进程从下一次请求起拒绝它。",
    "password_changed": "密码已修改；您在其他浏览器上的登录已全部失效。",
}


def _local(moment: datetime | None, with_time: bool = True) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def _iso_local(text: str | None) -> str:
    return _local(datetime.fromisoformat(text)) if text else "—"


def _number(value: Any, digits: int = 2) -> str:
    if value is None or value == "" or isinstance(value, Undefined):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{int(number):,}" if number.is_integer() else f"{number:,.{digits}f}"


def _width(fraction: Any) -> str:
    """A bar's width as a class (``w-0`` ... ``w-100`` in steps of 5, style.css): the Content-Security-Policy
    allows no inline ``style=`` attributes."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        value = 0.0
    return f"w-{5 * round(max(0.0, min(1.0, value)) * 20)}"


def _static_version() -> str:
    """A hash of the static files: page links change when a file does, so browsers never keep a stale one."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(highlight=highlight, local=_local, iso_local=_iso_local, number=_number,
                   ip_status=labels.ip_status, message=labels.message, reason=labels.reason,
                   location=labels.location, width=_width)
env.globals.update(labels=labels, static_version=_static_version())


def query_with(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None drops one): links for paging and sorting."""
    params = {k: v for k, v in request.query_params.items() if v != ""}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params) if params else "?"


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page with what every page needs: the user, the CSRF token for its forms, a one-time notice."""
    found = signed_in(request)
    flash_code = request.cookies.get(FLASH_COOKIE)
    html = env.get_template(template).render(
        request=request, user=found.user if found else None, csrf_token=page_token(request),
        flash=FLASH.get(flash_code or ""), query_with=lambda **kw: query_with(request, **kw), **context)
    response = HTMLResponse(html, status_code=status)
    if flash_code:
        clear_cookie(request, response, FLASH_COOKIE)
    new_token = getattr(request.state, "new_pre_csrf", None)
    if new_token:
        set_cookie(request, response, PRE_CSRF_COOKIE, new_token)
    return response


def redirect(request: Request, url: str, flash: str | None = None) -> RedirectResponse:
    """303 to a page (after a form); for htmx requests the browser is told to go there itself."""
    response = RedirectResponse(url, status_code=303)
    if request.headers.get("HX-Request"):
        response = HTMLResponse("", headers={"HX-Redirect": url})  # type: ignore[assignment]
    if flash:
        set_cookie(request, response, FLASH_COOKIE, flash, max_age=60)
    return response
