"""techmatch CLI commands for workbench accounts: users create, list, disable, enable, set-password, set-admin.

Each change is written to the audit log with the actor ``cli``."""

from __future__ import annotations

from typing import Annotated

import typer

from techmatch.commands.service import DbOpt, HomeOpt, _sessions

users_app = typer.Typer(help="Accounts for the web workbench (/web): brokers and enterprise users.",
                        no_args_is_help=True)

UsernameOpt = Annotated[str, typer.Option("--username", "-u", help="the name to sign in with")]


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def users_create(
    username: UsernameOpt,
    role: Annotated[str, typer.Option("--role", help="broker or enterprise")],
    enterprise: Annotated[str | None, typer.Option("--enterprise", help="enterprise id (enterprise users)")] = None,
    name: Annotated[str | None, typer.Option("--name", help="name shown on the pages")] = None,
    password: Annotated[str | None, typer.Option(
        "--password", help="the password (at least 10 characters, not all of one kind, not easy to guess); asked "
        "for when not given")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="a broker who may open the admin pages (users, keys)")]
    = False,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="leave an existing user as it is (scripts, demos)")]
    = False,
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Create a user who signs in at /web (only an argon2 hash of the password is stored)."""
    from service.core.accounts import create_user, find_user
    from service.core.models import EnterpriseRow

    _, sessions = _sessions(db, home)
    with sessions() as session:
        existing = find_user(session, username)
        if existing is not None and exist_ok:
            typer.echo(f"user '{existing.username}' exists already ({existing.role}"
                       + (f", enterprise {existing.enterprise}" if existing.enterprise else "") + "): left as it is")
            return
        user = create_user(session, username, _password(password), role, enterprise, name, is_admin=admin)
        if user.enterprise and session.get(EnterpriseRow, user.enterprise) is None:
            typer.echo(f"note: enterprise '{user.enterprise}' is not in the database; the user sees needs carrying "
                       "this enterprise id", err=True)
    typer.echo(f"created {user.role} user '{user.username}'" + (f" for enterprise {user.enterprise}"
                                                                 if user.enterprise else ""))


@users_app.command("list")
def users_list(db: DbOpt = None, home: HomeOpt = None) -> None:
    """Every user: name, role, enterprise, whether disabled, last sign-in."""
    from rich.console import Console
    from rich.table import Table

    from service.core.accounts import list_users

    _, sessions = _sessions(db, home)
    with sessions() as session:
        rows = list_users(session)
    if not rows:
        typer.echo("no users yet: create one with 'techmatch users create --username NAME --role broker'")
        return
    table = Table(show_lines=False)
    for column in ("username", "name", "role", "enterprise", "status", "created", "last sign-in"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.username, r.display_name or "", r.role + (" (admin)" if r.is_admin else ""), r.enterprise or "",
                      "disabled" if r.disabled else "active", r.created_at.strftime("%Y-%m-%d %H:%M"),
                      r.last_login_at.strftime("%Y-%m-%d %H:%M") if r.last_login_at else "never")
    Console().print(table)


@users_app.command("disable")
def users_disable(username: UsernameOpt, db: DbOpt = None, home: HomeOpt = None) -> None:
    """Stop a user from signing in; their open sessions end at once."""
    from service.core.accounts import set_disabled

    _, sessions = _sessions(db, home)
    with sessions() as session:
        row = set_disabled(session, username, True)
    typer.echo(f"disabled user '{row.username}' (signed out everywhere)")


@users_app.command("enable")
def users_enable(username: UsernameOpt, db: DbOpt = None, home: HomeOpt = None) -> None:
    """Let a disabled user sign in again."""
    from service.core.accounts import set_disabled

    _, sessions = _sessions(db, home)
    with sessions() as session:
        row = set_disabled(session, username, False)
    typer.echo(f"enabled user '{row.username}'")


@users_app.command("set-password")
def users_set_password(
    username: UsernameOpt,
    password: Annotated[str | None, typer.Option("--password", help="the new password; asked for when not given")]
    = None,
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Give a user a new password (their open sessions end)."""
    from service.core.accounts import set_password

    _, sessions = _sessions(db, home)
    with sessions() as session:
        row = set_password(session, username, _password(password))
    typer.echo(f"new password set for '{row.username}' (signed out everywhere)")


@users_app.command("set-admin")
def users_set_admin(
    username: UsernameOpt,
    off: Annotated[bool, typer.Option("--off", help="take the admin pages away instead")] = False,
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Let a broker open the admin pages (users, enterprises, API keys), or stop it with --off."""
    from service.core.accounts import set_admin

    _, sessions = _sessions(db, home)
    with sessions() as session:
        row = set_admin(session, username, not off)
    typer.echo(f"'{row.username}' is {'no longer ' if off else ''}an admin")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")


__all__ = ["register"]
