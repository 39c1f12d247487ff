"""What the operations layers (security headers, request metrics, request id) add to a request.

Two measurements:

1. **The layers alone**, in-process: an ASGI app that answers a fixed 200 at once, called directly
   ``--calls`` times with and without ``service.main.App``'s layers around it (CPU per call, the two runs
   interleaved in rounds). This is the exact added cost, free of network and model noise.
2. **A match request end to end**: two real ``techmatch serve``-like uvicorn servers on the same home, one
   with the layers and one built on FastAPI's plain stack, each with an empty embedding cache, sent the same
   ``POST /match`` free-text needs (new to each server) one at a time, alternating A/B request by request.

    flock /work/bench.lock nice -n 5 python scripts/middleware_cost.py --home var/techmatch \
        --needs /tmp/world11/needs.jsonl --requests 300
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from eval.benchmarks.service_floor import need_texts

SERVER = """
import sys, uvicorn
from fastapi import FastAPI
import service.main as m
from service.core.config import ServiceSettings
if sys.argv[2] == "bare":
    m.App.build_middleware_stack = FastAPI.build_middleware_stack  # FastAPI's stack: no operations layers
uvicorn.run(m.create_app(ServiceSettings(home=sys.argv[1])), host="127.0.0.1", port=int(sys.argv[3]),
            log_level="warning", access_log=False, proxy_headers=False)
"""


def layers_alone(calls: int, rounds: int = 5) -> dict[str, float]:
    """Microseconds of CPU per call: a bare ASGI endpoint, and the same inside the operations layers."""
    from service.core.config import ServiceSettings
    from service.ops.headers import SecurityHeaders, proxy_layer
    from service.ops.logs import RequestId
    from service.ops.metrics import RequestMetrics

    async def endpoint(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    settings = ServiceSettings()
    wrapped = proxy_layer(RequestId(RequestMetrics(SecurityHeaders(endpoint, settings.https_only,
                                                                   settings.hsts_seconds))), settings.trusted_proxies)
    scope = {"type": "http", "method": "POST", "path": "/match", "headers": [(b"content-length", b"40")],
             "scheme": "http", "client": ("127.0.0.1", 5000), "route": None}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message) -> None:
        return None

    async def run(app) -> float:
        start = time.process_time()
        for _ in range(calls):
            await app(dict(scope), receive, send)
        return (time.process_time() - start) / calls * 1e6

    bare, full = [], []
    for _ in range(rounds):
        bare.append(asyncio.run(run(endpoint)))
        full.append(asyncio.run(run(wrapped)))
    return {"bare_us": statistics.median(bare), "with_layers_us": statistics.median(full),
            "added_us": statistics.median(f - b for f, b in zip(full, bare))}


def start(home: Path, kind: str, port: int, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "TECHMATCH_CACHE_DIR": str(cache), "TECHMATCH_E5_RUNTIME": "torch-int8",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(home), kind, str(port)], env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the {kind} server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def end_to_end(home: Path, key: str, texts: list[str], port: int) -> dict[str, dict[str, float]]:
    caches = Path(tempfile.mkdtemp(prefix="tm-mw-"))
    procs = {kind: start(home, kind, port + i, caches / kind) for i, kind in enumerate(("full", "bare"))}
    times: dict[str, list[float]] = {"full": [], "bare": []}
    try:
        clients = {kind: httpx.Client(base_url=f"http://127.0.0.1:{port + i}", headers={"X-API-Key": key},
                                      timeout=60) for i, kind in enumerate(("full", "bare"))}
        for client in clients.values():  # warm up each server on texts outside the timed ones
            for text in texts[-5:]:
                client.post("/match", json={"text": text, "k": 10})
        for n, text in enumerate(texts[:-5]):
            order = ("full", "bare") if n % 2 else ("bare", "full")
            for kind in order:
                begin = time.perf_counter()
                response = clients[kind].post("/match", json={"text": text, "k": 10})
                times[kind].append((time.perf_counter() - begin) * 1000)
                assert response.status_code == 200, response.text
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
    out = {kind: {"n": len(v), "p50_ms": statistics.median(v), "p95_ms": percentile(v, 0.95),
                  "mean_ms": statistics.fmean(v)} for kind, v in times.items()}
    diffs = [f - b for f, b in zip(times["full"], times["bare"])]
    out["paired"] = {"median_added_ms": statistics.median(diffs), "mean_added_ms": statistics.fmean(diffs)}
    return out


def main(
    home: Annotated[Path, typer.Option(help="a service data folder with the demo loaded (techmatch load-demo)")],
    needs: Annotated[Path, typer.Option(help="JSON Lines needs new to the server (another world's seed)")],
    key: Annotated[str, typer.Option(help="a broker API key of that home")],
    requests: Annotated[int, typer.Option(help="match requests per server")] = 300,
    calls: Annotated[int, typer.Option(help="in-process calls of the layers per round")] = 20000,
    port: Annotated[int, typer.Option(help="first of the two ports")] = 18640,
) -> None:
    texts = need_texts(needs, requests + 5)
    report = {"layers_alone": layers_alone(calls), "match_request": end_to_end(home, key, texts, port),
              "load_average": os.getloadavg()}
    typer.echo(json.dumps(report, indent=1))


if __name__ == "__main__":
    typer.run(main)
