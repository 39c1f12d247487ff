"""Service fixtures: the same tests run on SQLite and on a real PostgreSQL (TECHMATCH_TEST_PG_URL).

Each test gets a fresh database (a new SQLite file, or a new PostgreSQL database on the test server)
and its own index folder; ``service`` starts the real app (lifespan included) behind a TestClient and can
restart it on the same database to show what survives.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from recommender.settings import PipelineSettings
from service.core.config import ServiceSettings
from service.core.security import create_api_key
from service.core.sync import ROWS, record_hash
from service.main import create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PG_ENV = "TECHMATCH_TEST_PG_URL"


def fixture_rows(kind: str) -> list[dict]:
    name = "results.jsonl" if kind == "result" else "needs.jsonl"
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _fresh_pg_database(server_url: str) -> str:
    import psycopg

    url = make_url(server_url)
    name = f"tm_{secrets.token_hex(6)}"
    conninfo = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    if url.password:
        conninfo += f" password={url.password}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def pg_server() -> str:
    """The test PostgreSQL server's URL, which must have pgvector; else the test skips with the reason (and
    fails on CI, where ``scripts/test.sh`` starts one: CI=true)."""
    server = os.environ.get(PG_ENV)
    problem = None if server else f"PostgreSQL tests need {PG_ENV} (bash scripts/postgres.sh start prints one)"
    if server and not _has_pgvector(server):
        problem = (f"the PostgreSQL server of {PG_ENV} has no pgvector extension (scripts/postgres.sh runs the "
                   "PostgreSQL 16 + pgvector of the pgserver package: pip install -e '.[dev]')")
    if problem and os.environ.get("CI") == "true":
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)
    return server  # type: ignore[return-value]


_PGVECTOR: dict[str, bool] = {}


def _has_pgvector(server_url: str) -> bool:
    if server_url not in _PGVECTOR:
        import psycopg

        url = make_url(server_url)
        with psycopg.connect(f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
                             + (f" password={url.password}" if url.password else "")) as conn:
            found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        _PGVECTOR[server_url] = found is not None
    return _PGVECTOR[server_url]


def fresh_pg_database() -> str:
    """A new, empty database on the test server (pgvector available in it)."""
    return _fresh_pg_database(pg_server())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "milvus"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of a test: SQLite (+ FAISS), PostgreSQL (+ pgvector: the vectors in the same database),
    or SQLite with the dense vectors in Milvus ("milvus": a Milvus Lite file in the index folder, as
    ``TECHMATCH_ANN_BACKEND=milvus`` gives an operator)."""
    if request.param in ("sqlite", "milvus"):
        return f"sqlite:///{tmp_path / 'techmatch.db'}"
    return fresh_pg_database()


class ServiceHarness:
    """Starts the app on one database and home folder; ``restart`` reopens both as a new process would."""

    def __init__(self, db_url: str, home: Path, ann_backend: str = "flat") -> None:
        self.settings = ServiceSettings(database_url=db_url, home=home,
                                        pipeline=PipelineSettings(ann_backend=ann_backend))
        self.client: TestClient | None = None

    @contextmanager
    def running(self) -> Iterator[TestClient]:
        with TestClient(create_app(self.settings), raise_server_exceptions=False) as client:
            self.client = client
            yield client

    @property
    def services(self):
        assert self.client is not None
        return self.client.app.state.services  # type: ignore[attr-defined]

    def key(self, role: str = "broker", enterprise: str | None = None) -> dict[str, str]:
        with self.services.sessions() as session:
            return {"X-API-Key": create_api_key(session, role, enterprise)}

    def index_agrees_with_db(self) -> None:
        """Every stored record is in the index with the same content, and nothing else is."""
        matcher = self.services.engine.matcher
        with self.services.sessions() as session:
            for kind, row_type in ROWS.items():
                stored = dict(session.execute(select(row_type.id, row_type.content_hash)).all())
                indexed = {rid: record_hash(rec, kind) for rid, rec in matcher.side(kind).records.items()}
                assert indexed == stored, f"{kind} index and database disagree"
                for signal in matcher.side(kind).signals.values():  # the signals themselves agree too
                    if hasattr(signal, "ann"):
                        assert set(signal.ann.ids) == set(stored)


def backend_of(request: pytest.FixtureRequest) -> str:
    """The ANN backend a test runs on: milvus and pgvector for those cases of ``db_url``, else flat FAISS."""
    callspec = getattr(request.node, "callspec", None)
    param = callspec.params.get("db_url") if callspec is not None else None
    return {"milvus": "milvus", "postgres": "pgvector"}.get(param, "flat")


@pytest.fixture
def harness(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> ServiceHarness:
    return ServiceHarness(db_url, tmp_path / "home", backend_of(request))


@pytest.fixture
def loaded(harness: ServiceHarness) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A running app holding the fixture's 8 results and 4 needs, with a broker key."""
    with harness.running() as client:
        broker = harness.key()
        assert client.post("/results/bulk", json=fixture_rows("result"), headers=broker).status_code == 201
        assert client.post("/needs/bulk", json=fixture_rows("need"), headers=broker).status_code == 201
        yield client, broker
