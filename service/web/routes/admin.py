"""Admin pages: users and enterprises (create, disable, reset a password), API keys (create, revoke, last use).

Only admins (brokers with the ``is_admin`` flag) open them; every change is audited with the admin as actor and
goes through the same functions as ``techmatch users`` and ``techmatch keys``. A new password or key is shown
once, on the page that answers the form (never stored, never in a redirect or cookie).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import Response

from recommender.errors import UserError
from service.api.deps import SessionDep
from service.core.accounts import WeakPassword, create_user, list_users, set_disabled, set_password
from service.core.admin import create_enterprise, disable_enterprise, enterprise_summaries
from service.core.passwords import PROBLEMS, password_problem
from service.core.security import create_api_key, list_api_keys, revoke_api_key
from service.web import labels
from service.web.auth import SESSION_COOKIE, AdminDep, actor
from service.web.routes import web_router
from service.web.templating import redirect, render

router = web_router()
Text = Annotated[str, Form(max_length=200)]


def temporary_password() -> str:
    """A random password that passes the strength rules (shown once; the user changes it after signing in)."""
    while True:
        password = secrets.token_urlsafe(12)
        if password_problem(password) is None:
            return password


def _problem(exc: UserError) -> str:
    if isinstance(exc, WeakPassword):
        return PROBLEMS[exc.code][1]
    return labels.message(str(exc))


SHOWN_ENTERPRISES = 30


def _users_page(request: Request, session, status: int = 200, q: str = "", **context: Any) -> Response:
    """Users, and the enterprises that hold accounts (or match the search ``q``): a demo world has hundreds."""
    everyone = enterprise_summaries(session)
    needle = q.strip().lower()
    if needle:
        shown = [e for e in everyone if needle in e.id.lower() or needle in e.name.lower()]
    else:
        shown = [e for e in everyone if e.users or e.keys]
    return render(request, "admin_users.html", status=status, nav="admin-users", users=list_users(session),
                  enterprises=shown[:SHOWN_ENTERPRISES], more=max(0, len(shown) - SHOWN_ENTERPRISES),
                  hidden=len(everyone) - len(shown), choices=everyone, q=q, **context)


@router.get("/admin/users")
def users_page(request: Request, session: SessionDep, found: AdminDep, q: str = "") -> Response:
    return _users_page(request, session, q=q[:100])


@router.post("/admin/users")
def create_user_action(request: Request, session: SessionDep, found: AdminDep, username: Text = "",
                       display_name: Text = "", role: Text = "enterprise", enterprise: Text = "",
                       admin: Text = "", password: Annotated[str, Form(max_length=400)] = "") -> Response:
    chosen = password or temporary_password()
    try:
        user = create_user(session, username, chosen, role, enterprise or None, display_name,
                           is_admin=bool(admin), actor=actor(request, found))
    except UserError as exc:
        session.rollback()
        return _users_page(request, session, status=422, error=_problem(exc), form=dict(
            username=username, display_name=display_name, role=role, enterprise=enterprise))
    return _users_page(request, session, done=f"已创建用户 {user.username}。",
                       secret=None if password else chosen, secret_for=user.username)


@router.post("/admin/users/{username}/disable")
def disable_user_action(request: Request, username: str, session: SessionDep, found: AdminDep) -> Response:
    if username == found.user.username:
        return _users_page(request, session, status=422, error="不能停用自己的账号。")
    set_disabled(session, username, True, actor=actor(request, found))
    return redirect(request, "/web/admin/users", flash="user_disabled")


@router.post("/admin/users/{username}/enable")
def enable_user_action(request: Request, username: str, session: SessionDep, found: AdminDep) -> Response:
    set_disabled(session, username, False, actor=actor(request, found))
    return redirect(request, "/web/admin/users", flash="user_enabled")


@router.post("/admin/users/{username}/password")
def reset_password_action(request: Request, username: str, session: SessionDep, found: AdminDep) -> Response:
    """A new temporary password, shown once; the user's sessions end in every worker."""
    chosen = temporary_password()
    own = username == found.user.username  # resetting one's own: this browser stays signed in
    user = set_password(session, username, chosen, actor=actor(request, found),
                        keep_token=request.cookies.get(SESSION_COOKIE) if own else None)
    return _users_page(request, session, done=f"已为 {user.username} 重置密码，其所有登录已失效。", secret=chosen,
                       secret_for=user.username)


@router.post("/admin/enterprises")
def create_enterprise_action(request: Request, session: SessionDep, found: AdminDep, name: Text = "",
                             enterprise_id: Text = "", industry: Text = "", region: Text = "") -> Response:
    try:
        row = create_enterprise(session, name, enterprise_id, industry, region, actor=actor(request, found))
    except UserError as exc:
        session.rollback()
        return _users_page(request, session, status=422, error=_problem(exc))
    return _users_page(request, session, done=f"已创建企业 {row.id}（{row.name}）。")


@router.post("/admin/enterprises/{enterprise_id}/disable")
def disable_enterprise_action(request: Request, enterprise_id: str, session: SessionDep, found: AdminDep) -> Response:
    users, keys = disable_enterprise(session, enterprise_id, actor=actor(request, found))
    return _users_page(request, session, done=f"企业 {enterprise_id}：已停用 {users} 个用户，吊销 {keys} 个密钥。")


def _keys_page(request: Request, session, status: int = 200, **context: Any) -> Response:
    return render(request, "admin_keys.html", status=status, nav="admin-keys", keys=list_api_keys(session)[::-1],
                  choices=enterprise_summaries(session), **context)


@router.get("/admin/keys")
def keys_page(request: Request, session: SessionDep, found: AdminDep) -> Response:
    return _keys_page(request, session)


@router.post("/admin/keys")
def create_key_action(request: Request, session: SessionDep, found: AdminDep, role: Text = "enterprise",
                      enterprise: Text = "", label: Text = "", expires_days: Text = "") -> Response:
    try:
        days = float(expires_days) if expires_days.strip() else None
    except ValueError:
        return _keys_page(request, session, status=422, error="有效期应为天数（数字），或留空表示长期有效。")
    try:
        token = create_api_key(session, role, enterprise or None, label.strip() or None, days,
                               actor=actor(request, found))
    except UserError as exc:
        session.rollback()
        return _keys_page(request, session, status=422, error=_problem(exc))
    return _keys_page(request, session, done=f"已创建密钥 {token.split('_')[1]}。", secret=token)


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key_action(request: Request, key_id: str, session: SessionDep, found: AdminDep) -> Response:
    revoke_api_key(session, key_id, actor=actor(request, found))
    return redirect(request, "/web/admin/keys", flash="key_revoked")
