"""Web workbench fixtures.

* ``site``: a real ``techmatch serve`` over the tiny demo world (300 results, 60 needs) with the demo logins,
  started once for the browser tests; ``browser``: headless Debian Chromium through Playwright.
* ``workbench``: the app behind a TestClient on the fixture world (8 results, 4 needs), on SQLite and, with
  TECHMATCH_TEST_PG_URL, on PostgreSQL, with a broker and two enterprise users.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from webtools import CHROMIUM, Logins, launch_browser, prepare_demo_home, start_server, stop_server

from service.core.accounts import create_user
from service.core.config import ServiceSettings
from service.core.partners import upsert_enterprises
from service.core.security import create_api_key
from service.main import create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PG_ENV = "TECHMATCH_TEST_PG_URL"
PASSWORD = "correct-horse-9"


def fixture_rows(kind: str) -> list[dict]:
    name = "results.jsonl" if kind == "result" else "needs.jsonl"
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token in its forms"
    return found.group(1)


# -- a real server and a real browser ------------------------------------------------------------------
@dataclass
class Site:
    base: str
    home: Path
    logins: Logins
    proc: subprocess.Popen | None = None
    env: dict[str, str] | None = None

    def restart(self) -> None:
        """Stop the server and start a new one on the same home (a new port: ``base`` follows it)."""
        if self.proc is not None:
            stop_server(self.proc)
        self.proc, self.base = start_server(self.home, self.env)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("web-demo") / "home"
    cache = tmp_path_factory.getbasetemp() / "embedding-cache"  # the suite's private cache (tests/conftest.py)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TECHMATCH_CACHE_DIR", str(cache))
        logins = prepare_demo_home(home, "tiny")
        env = {"TECHMATCH_CACHE_DIR": str(cache)}
        proc, base = start_server(home, env)
    site = Site(base, home, logins, proc, env)
    try:
        yield site
    finally:
        if site.proc is not None:
            stop_server(site.proc)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium; scripts/test.sh does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def no_csp_violations(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any test that drives the browser fails on a Content-Security-Policy violation in any of its pages."""
    if "browser" not in request.fixturenames:
        yield
        return
    browser = request.getfixturevalue("browser")
    browser.violations.clear()
    yield
    if browser.violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(browser.violations), pytrace=False)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


# -- the app behind a TestClient -------------------------------------------------------------------------
def _fresh_pg_database(server_url: str) -> str:
    import psycopg

    url = make_url(server_url)
    name = f"tmweb_{secrets.token_hex(6)}"
    conninfo = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    if url.password:
        conninfo += f" password={url.password}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


@dataclass
class Workbench:
    """A running app with the fixture world, its users, and helpers to sign in as each of them."""

    app_client: TestClient
    broker_key: dict[str, str]
    settings: ServiceSettings

    @property
    def services(self):
        return self.app_client.app.state.services  # type: ignore[attr-defined]

    def client(self, username: str | None = None, password: str = PASSWORD, https: bool = False) -> TestClient:
        """A new browser-like client (its own cookies), signed in as ``username`` if given."""
        base = "https://testserver" if https else "http://testserver"
        client = TestClient(self.app_client.app, base_url=base, raise_server_exceptions=False,
                            follow_redirects=False)
        if username is not None:
            token = csrf_of(client.get("/web/login").text)
            response = client.post("/web/login", data={"username": username, "password": password,
                                                       "csrf_token": token})
            assert response.status_code == 303, response.text
        return client


def _start(db_url: str, home: Path) -> Iterator[Workbench]:
    settings = ServiceSettings(database_url=db_url, home=home)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        with services.sessions() as session:
            key = {"X-API-Key": create_api_key(session, "broker")}
            create_user(session, "broker", PASSWORD, "broker", display_name="王经理")
            create_user(session, "ent1", PASSWORD, "enterprise", "E1")
            create_user(session, "ent2", PASSWORD, "enterprise", "E2")
            upsert_enterprises(session, [{"id": "E1", "name": "一号电池有限公司", "region": "江苏省常州市",
                                          "industry": "新能源汽车", "contact": {"phone": "0519-000"}},
                                         {"id": "E2", "name": "二号汽车零部件公司", "region": "湖北省武汉市"}])
        assert client.post("/results/bulk", json=fixture_rows("result"), headers=key).status_code == 201
        assert client.post("/needs/bulk", json=fixture_rows("need"), headers=key).status_code == 201
        yield Workbench(client, key, settings)


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workbench]:
    """One app on SQLite shared by a module's tests (each test signs in with its own client)."""
    folder = tmp_path_factory.mktemp("workbench")
    cache = tmp_path_factory.getbasetemp() / "embedding-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TECHMATCH_CACHE_DIR", str(cache))
        yield from _start(f"sqlite:///{folder / 'techmatch.db'}", folder / "home")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_workbench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workbench]:
    """A fresh app on SQLite, and on PostgreSQL when a test server is given."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'techmatch.db'}"
    else:
        server = os.environ.get(PG_ENV)
        if not server:
            pytest.skip(f"PostgreSQL tests need {PG_ENV} (bash scripts/postgres.sh start prints one)")
        url = _fresh_pg_database(server)
    yield from _start(url, tmp_path / "home")
