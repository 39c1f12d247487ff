"""``techmatch db migrate --to postgresql://...``: an SQLite deployment moved to PostgreSQL + pgvector keeps its
accounts (they still sign in), keys, records, decisions, feedback and judgements, and answers the same top 10."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ServiceHarness, fixture_rows, fresh_pg_database
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.core.accounts import authenticate, create_user
from service.core.models import Base, FeedbackRow, InterestRow, JudgementRow
from service.core.security import Caller
from service.core.workbench import set_interest
from techmatch.cli import app

pytestmark = pytest.mark.postgres
NEEDS = ("N1", "N2", "N3", "N4")
TEXT = "高镍三元正极材料包覆改性"


def answers(client, key: dict[str, str]) -> dict[str, list[str]]:
    """Each need's top 10 (its judgements applied) and a free-text match's top 10, by id."""
    out = {n: [m["id"] for m in client.get(f"/needs/{n}/matches", params={"k": 10}, headers=key).json()["matches"]]
           for n in NEEDS}
    out["text"] = [m["id"] for m in client.post("/match", json={"text": TEXT, "k": 10}, headers=key).json()["matches"]]
    return out


def counts(harness: ServiceHarness) -> dict[str, int]:
    with harness.services.sessions() as session:
        return {t.name: int(session.scalar(select(func.count()).select_from(t)) or 0)
                for t in Base.metadata.sorted_tables}


def test_sqlite_deployment_moved_to_postgresql_with_pgvector(tmp_path: Path):
    home = tmp_path / "home"
    sqlite = ServiceHarness(f"sqlite:///{home / 'techmatch.db'}", home)
    with sqlite.running() as client:
        key = sqlite.key()
        assert client.post("/results/bulk", json=fixture_rows("result"), headers=key).status_code == 201
        assert client.post("/needs/bulk", json=fixture_rows("need"), headers=key).status_code == 201
        assert client.post("/feedback", json={"need_id": "N1", "result_id": "R1", "outcome": "contacted"},
                           headers=key).status_code == 201
        assert client.post("/needs/N1/judgements", json={"result_id": "R2", "judgement": "irrelevant", "k": 3},
                           headers=key).status_code < 300
        with sqlite.services.sessions() as session:
            user = create_user(session, "ada", "a long passphrase 12", "broker")
            set_interest(session, Caller("k", "broker"), "N2", "R3", True, user.id)
        before, stored = answers(client, key), counts(sqlite)
    assert stored["users"] == 1 and stored["relevance_judgements"] >= 1 and stored["interests"] == 1

    target = fresh_pg_database()
    runner = CliRunner()
    moved = runner.invoke(app, ["db", "migrate", "--to", target, "--home", str(home)])
    assert moved.exit_code == 0, moved.output
    assert "dense vectors in pgvector" in moved.stdout

    postgres = ServiceHarness(target, home, "pgvector")
    with postgres.running() as client:
        postgres.index_agrees_with_db()  # the vectors are in the table, one per record
        assert counts(postgres) == stored
        assert answers(client, key) == before  # the same key works; the same top 10 everywhere
        with postgres.services.sessions() as session:
            assert authenticate(session, "ada", "a long passphrase 12").username == "ada"
            assert session.scalar(select(func.count()).select_from(FeedbackRow)) == 1
            assert session.scalar(select(JudgementRow.result_id)) == "R2"
            assert session.scalar(select(InterestRow.result_id)) == "R3"
        new = client.post("/feedback", json={"need_id": "N2", "result_id": "R3", "outcome": "contacted"},
                          headers=key)
        assert new.status_code == 201  # the sequences moved past the copied ids

    again = runner.invoke(app, ["db", "migrate", "--to", target, "--home", str(home)])
    assert again.exit_code == 2 and "already holds data" in again.output, again.output
