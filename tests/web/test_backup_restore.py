"""``techmatch backup`` of the running demo service, ``techmatch restore`` into an empty folder, and the
service started on the restore answers the same top 10 for every demo need; a damaged backup is refused
(exit 2, nothing written), and so is a PostgreSQL backup without pg_dump."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.core.config import ServiceSettings
from service.main import create_app
from techmatch.cli import app as cli_app


def techmatch(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.output


def top10(get, key: str, need_ids: list[str]) -> dict[str, list[str]]:
    return {need: [m["id"] for m in get(f"/needs/{need}/matches", params={"k": 10},
                                        headers={"X-API-Key": key}).json()["matches"]] for need in need_ids}


def test_backup_of_a_running_service_restores_to_the_same_matches(site, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    live = httpx.Client(base_url=site.base, timeout=60)
    key = site.logins.api_key
    needs = [n["id"] for n in live.get("/needs", params={"limit": 500}, headers={"X-API-Key": key}).json()["items"]]
    assert len(needs) >= 60
    code, out = techmatch("backup", str(tmp_path / "backup"), "--home", str(site.home))  # while it serves
    assert code == 0, out
    before = top10(live.get, key, needs)
    manifest = json.loads((tmp_path / "backup" / "backup.json").read_text(encoding="utf-8"))
    assert "techmatch.db" in manifest["files"]
    assert any(name.startswith("index/results/") for name in manifest["files"])

    code, out = techmatch("restore", str(tmp_path / "backup"), "--home", str(tmp_path / "restored"))
    assert code == 0, out
    monkeypatch.setenv("TECHMATCH_E5_RUNTIME", "torch-int8")  # as 'techmatch serve' encodes its queries
    with TestClient(create_app(ServiceSettings(home=tmp_path / "restored"))) as restored:
        ready = restored.get("/ready").json()
        assert ready["status"] == "ready" and ready["needs"] >= 60
        after = top10(restored.get, key, needs)  # the key came along with the database
    assert after == before
    assert sum(len(ids) for ids in after.values()) >= 10 * len(needs) * 0.9

    code, out = techmatch("restore", str(tmp_path / "backup"), "--home", str(tmp_path / "restored"))
    assert code == 2 and "not an empty folder" in out
    damaged = next(p for p in sorted((tmp_path / "backup" / "index" / "results").iterdir()) if p.is_file())
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    code, out = techmatch("restore", str(tmp_path / "backup"), "--home", str(tmp_path / "again"))
    assert code == 2 and "does not match its SHA-256 checksum" in out and damaged.name in out
    assert "Traceback" not in out and not (tmp_path / "again").exists()


def test_a_postgresql_backup_without_pg_dump_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump on it
    monkeypatch.setenv("TECHMATCH_PG_BIN", str(tmp_path))  # nor where the tools are looked for first
    code, out = techmatch("backup", str(tmp_path / "b"), "--db", "postgresql+psycopg://u@127.0.0.1:1/x",
                          "--home", str(tmp_path / "home"))
    assert code == 2 and "pg_dump not found" in out and "postgresql-client" in out


@pytest.mark.postgres
def test_a_postgresql_service_backs_up_with_pg_dump_and_restores_to_the_same_matches(tmp_path: Path):
    import os

    from conftest import PG_ENV, _fresh_pg_database, _start

    server = os.environ.get(PG_ENV)
    if not server:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (bash scripts/postgres.sh start prints one)")
    source, target = _fresh_pg_database(server), _fresh_pg_database(server)
    backup = tmp_path / "backup"
    for bench in _start(source, tmp_path / "home"):
        key = bench.broker_key["X-API-Key"]
        before = top10(bench.app_client.get, key, ["N1", "N2", "N3", "N4"])
        code, out = techmatch("backup", str(backup), "--db", source, "--home", str(tmp_path / "home"))
        assert code == 0, out
    assert "database.pgdump" in json.loads((backup / "backup.json").read_text(encoding="utf-8"))["files"]
    code, out = techmatch("restore", str(backup), "--db", target, "--home", str(tmp_path / "restored"))
    assert code == 0, out
    with TestClient(create_app(ServiceSettings(database_url=target, home=tmp_path / "restored"))) as restored:
        assert top10(restored.get, key, ["N1", "N2", "N3", "N4"]) == before
    code, out = techmatch("restore", str(backup), "--db", target, "--home", str(tmp_path / "restored-again"))
    assert code == 2 and "has tables already" in out
