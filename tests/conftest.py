"""Shared fixtures: a small hand-written Chinese world, a private embedding cache, the shared data path."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(os.environ.get("TECHMATCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# The obviously right result for each fixture need (and so the right need for each of these results).
EXPECTED = {"N1": "R1", "N2": "R3", "N3": "R5", "N4": "R2"}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test session gets its own embedding cache, so tests never depend on a developer's cache."""
    cache = tmp_path_factory.getbasetemp() / "embedding-cache"
    monkeypatch.setenv("TECHMATCH_CACHE_DIR", str(cache))
    # One test process starts hundreds of apps: freezing the heap at each start would also keep every earlier
    # test's garbage for good (tests/service/test_heap.py turns it on for one real server).
    monkeypatch.setenv("TECHMATCH_FREEZE_HEAP", "false")


@pytest.fixture(scope="module")
def fixture_index():
    """The fixture world's results indexed by the shipped pipeline, and its needs: one build per test module."""
    from recommender.pipeline import new_index
    from recommender.records import load_records

    needs, _ = load_records(FIXTURES / "needs.jsonl", "need")
    results, _ = load_records(FIXTURES / "results.jsonl", "result")
    index = new_index("result")
    index.build(results)
    return index, needs


@pytest.fixture
def results_path() -> Path:
    return FIXTURES / "results.jsonl"


@pytest.fixture
def needs_path() -> Path:
    return FIXTURES / "needs.jsonl"


def shared_data(name: str) -> Path:
    """A data set under ../shared/data, or skip the test with the reason."""
    folder = SHARED_DATA / name
    if not folder.exists():
        pytest.skip(f"shared data set '{name}' not found at {folder} (set TECHMATCH_SHARED_DATA)")
    return folder


@pytest.fixture
def milvus_lite_server(tmp_path: Path):
    """A 'milvus-lite server' on a free local port: how several processes share one Milvus Lite database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([Path(sys.executable).parent / "milvus-lite", "server", "--data-dir",
                               str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as attempt:
            if attempt.connect_ex(("127.0.0.1", port)) == 0:
                break
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"milvus-lite server did not start: {server.stderr.read().decode()[-500:]}")
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.send_signal(signal.SIGINT)  # it closes its database on SIGINT
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
