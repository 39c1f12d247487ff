"""``techmatch users create|list|disable|enable|set-password``: the accounts the workbench signs in with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner
from webtools import cli

from service.core.accounts import SignInError, authenticate
from service.core.db import make_engine, make_sessions
from service.core.models import UserRow
from techmatch.cli import app


def test_users_commands(tmp_path: Path):
    home = str(tmp_path / "home")
    out = cli("users", "create", "-u", "li.gong", "--role", "enterprise", "--enterprise", "E7", "--name", "李工",
              "--password", "s3cret-pass", "--home", home)
    assert "created enterprise user 'li.gong' for enterprise E7" in out
    assert "exists already" in cli("users", "create", "-u", "li.gong", "--role", "broker", "--password", "whatever-1",
                                   "--exist-ok", "--home", home)
    cli("users", "create", "-u", "wang", "--role", "broker", "--password", "broker-pass", "--home", home)
    listing = cli("users", "list", "--home", home)
    assert "li.gong" in listing and "wang" in listing and "never" in listing

    sessions = make_sessions(make_engine(f"sqlite:///{(tmp_path / 'home' / 'techmatch.db').resolve()}"))
    with sessions() as session:
        stored = session.query(UserRow).filter_by(username="li.gong").one()
        assert stored.password_hash.startswith("$argon2id$") and "s3cret-pass" not in stored.password_hash
        assert authenticate(session, "li.gong", "s3cret-pass").enterprise == "E7"

    assert "disabled user 'li.gong'" in cli("users", "disable", "-u", "li.gong", "--home", home)
    with sessions() as session:
        try:
            authenticate(session, "li.gong", "s3cret-pass")
            raise AssertionError("a disabled user signed in")
        except SignInError as exc:
            assert exc.reason == "disabled"
    cli("users", "enable", "-u", "li.gong", "--home", home)
    cli("users", "set-password", "-u", "li.gong", "--password", "new-pass-123", "--home", home)
    with sessions() as session:
        assert authenticate(session, "li.gong", "new-pass-123").username == "li.gong"

    runner = CliRunner()
    for args, message in (
        (["-u", "x1", "--role", "enterprise", "--password", "long-enough"], "needs --enterprise"),
        (["-u", "x2", "--role", "broker", "--password", "short"], "at least 10 characters"),
        (["-u", "bad name!", "--role", "broker", "--password", "long-enough"], "invalid username"),
        (["-u", "wang", "--role", "broker", "--password", "long-enough"], "exists already"),
        (["-u", "x3", "--role", "admin", "--password", "long-enough"], "unknown role"),
    ):
        result = runner.invoke(app, ["users", "create", *args, "--home", home])
        assert result.exit_code == 2 and message in result.stderr, result.output
    result = runner.invoke(app, ["users", "disable", "-u", "nobody", "--home", home])
    assert result.exit_code == 2 and "no user 'nobody'" in result.stderr

    shown = subprocess.run([sys.executable, "-m", "techmatch", "users", "disable", "-u", "nobody", "--home", home],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONIOENCODING="utf-8"), timeout=120)
    assert shown.returncode == 2 and shown.stderr.startswith("error: no user 'nobody'")
    assert "Traceback" not in shown.stderr
