"""Security with real ``techmatch serve`` processes: the sign-in throttle, and a revoked key, a disabled user's
sessions and a changed password's old sessions refused at once by every worker (``--workers 2``)."""

from __future__ import annotations

import re
import signal
import statistics
import time
from pathlib import Path

import httpx
from test_service_process import start_server, wait_for_health

from service.core.accounts import create_user
from service.core.db import make_engine, make_sessions
from service.core.security import revoke_api_key

PASSWORD = "correct-horse-9"


def _sessions(home: Path):
    return make_sessions(make_engine(f"sqlite:///{(home / 'techmatch.db').resolve()}"))


def _login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/web/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/web/login", data={"username": username, "password": password, "csrf_token": token})


def _stop(proc) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def test_sign_in_is_throttled_per_account_then_opens_again(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    with _sessions(home)() as session:
        create_user(session, "wang", PASSWORD, "broker")
    proc, base, _ = start_server(home, env={"TECHMATCH_SIGNIN_WINDOW_SECONDS": "8"})
    try:
        wait_for_health(base, proc)
        with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
            # an unknown name and a wrong password: the same answer, in about the same time (argon2 both)
            timings: dict[str, list[float]] = {"nobody-here": [], "wang": []}
            for _ in range(2):  # alternating, median of two each: one slow moment of a shared machine is not a tell
                for name in timings:
                    start = time.perf_counter()
                    answer = _login(client, name, "wrong-password")
                    timings[name].append(time.perf_counter() - start)
                    assert answer.status_code == 401
                    assert "用户名或密码不正确" in answer.text
            typical = {name: statistics.median(t) for name, t in timings.items()}
            assert max(typical.values()) < 4 * min(typical.values()), timings
            statuses = [_login(client, "wang", f"guess-{i}") for i in range(28)]  # 30 wrong in all
            codes = [r.status_code for r in statuses]
            assert codes[:8] == [401] * 8 and set(codes[8:]) == {429}, codes  # 10 wrong for one account, then locked
            locked = statuses[-1]
            assert int(locked.headers["Retry-After"]) >= 1 and "登录失败次数过多" in locked.text
            refused = _login(client, "wang", PASSWORD)  # the right password, inside the window: still refused
            assert refused.status_code == 429
            time.sleep(int(refused.headers["Retry-After"]) + 0.5)
            accepted = _login(client, "wang", PASSWORD)
            assert accepted.status_code == 303, accepted.text[:300]
    finally:
        _stop(proc)


def _session_cookie(base: str, username: str) -> str:
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        assert _login(client, username, PASSWORD).status_code == 303
        return client.cookies["tm_session"]


def _page(base: str, token: str, path: str = "/web/needs") -> tuple[int, str]:
    """A page over a new connection (so either worker may answer), and which worker that was."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False,
                      headers={"Cookie": f"tm_session={token}"}) as fresh:
        status = fresh.get(path).status_code
        return status, fresh.get("/ready").json()["worker"]


def test_a_revoked_key_a_disabled_user_and_a_changed_password_are_refused_by_every_worker_at_once(tmp_path: Path):
    """One server of two workers (starting one costs most of this test's time) for the three kinds of revocation."""
    from service.core.accounts import set_disabled

    home = tmp_path / "home"
    home.mkdir()
    with _sessions(home)() as session:
        create_user(session, "wang", PASSWORD, "broker")
        create_user(session, "li", PASSWORD, "enterprise", "E1")
    proc, base, broker = start_server(home, "--workers", "2")
    try:
        wait_for_health(base, proc)
        with httpx.Client(base_url=base, headers=broker, timeout=30) as client:
            workers = set()
            deadline = time.monotonic() + 60
            while len(workers) < 2 and time.monotonic() < deadline:  # both workers have the key cached
                with httpx.Client(base_url=base, headers=broker, timeout=30) as fresh:  # new connection each
                    assert fresh.get("/needs").status_code == 200
                    workers.add(fresh.get("/ready").json()["worker"])
            assert len(workers) == 2, workers
            with _sessions(home)() as session:
                revoke_api_key(session, broker["X-API-Key"].split("_")[1])
            for _ in range(12):
                with httpx.Client(base_url=base, headers=broker, timeout=30) as fresh:
                    assert fresh.get("/needs").status_code == 401
            assert client.get("/needs").status_code == 401

        kept, old = _session_cookie(base, "wang"), _session_cookie(base, "wang")  # two browsers of one user
        li = _session_cookie(base, "li")
        workers: set[str] = set()
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:  # every session works on both workers
            for token in (kept, old, li):
                status, worker = _page(base, token)
                assert status == 200
                workers.add(worker)
        assert len(workers) == 2, workers

        # wang changes the password in one browser: the other one is refused on its next request, everywhere
        with httpx.Client(base_url=base, timeout=30, follow_redirects=False,
                          headers={"Cookie": f"tm_session={kept}"}) as browser:
            form = browser.get("/web/account/password").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            new = "a-new-passphrase-42"
            changed = browser.post("/web/account/password", data={"current": PASSWORD, "new": new, "confirm": new,
                                                                  "csrf_token": token})
            assert changed.status_code == 303, changed.text[:300]
        seen: set[str] = set()
        for _ in range(10):
            status, worker = _page(base, old)
            assert status == 303  # back to the sign-in page
            seen.add(worker)
            assert _page(base, kept)[0] == 200  # the browser that changed it stays signed in
        # li is disabled (the CLI's way): li's session ends at once, on both workers
        with _sessions(home)() as session:
            set_disabled(session, "li")
        for _ in range(10):
            status, worker = _page(base, li)
            assert status == 303
            seen.add(worker)
        assert len(seen) == 2, seen
        with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
            assert _login(client, "li", PASSWORD).status_code == 403  # and cannot sign in again
            assert _login(client, "wang", PASSWORD).status_code == 401  # the old password is gone
    finally:
        _stop(proc)
