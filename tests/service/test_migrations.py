"""Schema migrations (Alembic) on SQLite and PostgreSQL: a database of the previous release is upgraded in
place at startup, its rows kept, and the newest revision matches the models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import ServiceHarness
from sqlalchemy import create_engine, inspect, text

from service.core.migrations import current_revision, head_revision, upgrade_schema
from service.core.models import Base
from service.core.security import hash_key, revoke_api_key

TOKEN = "tm_0ld0ld00_a-key-issued-before-the-upgrade"


def _differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


@pytest.fixture
def db_url(db_url: str, request: pytest.FixtureRequest) -> str:
    if request.node.callspec.params.get("db_url") == "milvus":
        pytest.skip("the schema does not depend on the ANN backend: covered by the sqlite case")
    return db_url


def test_newest_revision_matches_the_models(db_url: str):
    engine = create_engine(db_url)
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    assert _differences(engine) == []


def test_a_database_of_the_previous_release_is_upgraded_with_its_rows(db_url: str, tmp_path):
    engine = create_engine(db_url)
    upgrade_schema(engine, "0001")
    # The first revision is the previous release's schema (made by create_all): the models differ from it
    # by what the later revisions add (a column for key revocation, the web workbench's tables).
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in _differences(engine)}
    assert kinds == {"add_column", "add_table", "add_index"}
    with engine.begin() as conn:  # as the previous release left it: its tables, no alembic_version
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO api_keys (id, key_hash, role, enterprise, label, created_at) "
                          "VALUES ('0ld0ld00', :h, 'broker', NULL, 'old', CURRENT_TIMESTAMP)"), {"h": hash_key(TOKEN)})
        conn.execute(text("INSERT INTO needs (id, title, data, content_hash, created_at, updated_at, enterprise) "
                          "VALUES ('N9', '旧需求', :d, 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'E1')"),
                     {"d": '{"id": "N9", "title": "旧需求", "description": "", "enterprise": "E1"}'})
    assert "revoked_at" not in {c["name"] for c in inspect(engine).get_columns("api_keys")}
    engine.dispose()

    harness = ServiceHarness(db_url, tmp_path / "home")
    with harness.running() as client:  # startup migrates, then indexes what the database holds
        key = {"X-API-Key": TOKEN}
        assert client.get("/needs/N9", headers=key).json()["title"] == "旧需求"
        assert client.get("/ready").json()["needs"] == 1
        assert current_revision(harness.services.db) == head_revision()
        with harness.services.sessions() as session:
            revoke_api_key(session, "0ld0ld00")  # the new column at work
        harness.services.callers._known.clear()  # as a new process would
        assert client.get("/needs/N9", headers=key).status_code == 401
