"""Latency of the web workbench's pages against a real ``techmatch serve`` (p50 / p95 / max per page).

    techmatch load-demo --size small          # the 2,000-result demo (bash scripts/demo.sh does this)
    python -m eval.benchmarks.web_pages --home var/techmatch          # starts a server over that home
    python -m eval.benchmarks.web_pages --url http://127.0.0.1:8000   # or measures a running one

It signs in as the demo broker and the demo enterprise (scripts/demo.sh creates them; ``--create-users``
creates them here), then requests each page one at a time, cycling through different needs and results,
after a few warm-up requests. Target (issue 10): every page under 300 ms at the 2,000-result demo on 2
cores, except the match page, which runs a search (its figures are printed all the same).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

BROKER = ("demo-broker", "demo-broker-2026")
ENTERPRISE = ("demo-enterprise", "demo-enterprise-2026")
TARGET_MS = 300.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not found:
        raise SystemExit("no CSRF token on the sign-in page: is this a techmatch server?")
    return found.group(1)


def sign_in(base: str, login: tuple[str, str]) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
    token = _token(client.get("/web/login").text)
    response = client.post("/web/login", data={"username": login[0], "password": login[1], "csrf_token": token})
    if response.status_code != 303:
        raise SystemExit(f"could not sign in as {login[0]} ({response.status_code}): create the demo users "
                         "(bash scripts/demo.sh, or --create-users)")
    return client


def measure(name: str, request: Callable[[int], httpx.Response], n: int, warmup: int = 3) -> dict:
    for i in range(warmup):
        request(i)
    times = []
    for i in range(n):
        start = time.perf_counter()
        response = request(i)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code >= 400:
            raise SystemExit(f"{name}: HTTP {response.status_code}")
    times.sort()
    return {"page": name, "p50": statistics.median(times), "p95": times[max(0, round(0.95 * len(times)) - 1)],
            "max": times[-1], "n": n}


def ids(client: httpx.Client, path: str, pattern: str) -> list[str]:
    found = list(dict.fromkeys(re.findall(pattern, client.get(path).text)))
    if not found:
        raise SystemExit(f"no ids found on {path}: load the demo first (techmatch load-demo --size small)")
    return found


def run(base: str, n: int) -> list[dict]:
    broker, enterprise = sign_in(base, BROKER), sign_in(base, ENTERPRISE)
    anonymous = httpx.Client(base_url=base, timeout=60)
    needs = ids(broker, "/web/needs", r'href="/web/needs/([^"/#]+)"')
    results = ids(broker, "/web/results", r'href="/web/results/([^"/#?]+)"')
    own = ids(enterprise, "/web/needs", r'href="/web/needs/([^"/#]+)"')
    own = [i for i in own if i != "new"]
    select = re.search(r'<select name="field">(.*?)</select>', broker.get("/web/results").text, re.S)
    fields = re.findall(r'<option value="([^"]+)"', select.group(1)) if select else []
    if not fields:
        raise SystemExit("no fields in the results filter: load the demo first")
    queries = ["锂电池正极材料循环寿命", "工业机器人视觉检测", "卫星推进系统寿命", "污水处理膜材料", "功率器件封装"]

    def get(client: httpx.Client, path: Callable[[int], str]) -> Callable[[int], httpx.Response]:
        return lambda i: client.get(path(i))

    pages = [
        ("sign-in page (visitor)", get(anonymous, lambda i: "/web/login")),
        ("dashboard", get(broker, lambda i: "/web/dashboard")),
        ("needs list", get(broker, lambda i: f"/web/needs?page={1 + i % 5}")),
        ("needs search (text)", get(broker, lambda i: f"/web/needs?q={queries[i % len(queries)]}")),
        ("results list", get(broker, lambda i: f"/web/results?page={1 + i % 5}")),
        ("results, filtered", get(broker, lambda i: f"/web/results?field={fields[i % len(fields)]}&trl_min=4")),
        ("results search (text)", get(broker, lambda i: f"/web/results?q={queries[i % len(queries)]}&trl_min=3")),
        ("result with push list", get(broker, lambda i: f"/web/results/{results[i % len(results)]}")),
        ("shortlist table", get(broker, lambda i: f"/web/shortlist?sort={['rank', 'trl', 'score'][i % 3]}")),
        ("feedback list", get(broker, lambda i: "/web/feedback")),
        ("upload form", get(broker, lambda i: "/web/upload")),
        ("enterprise: my needs", get(enterprise, lambda i: "/web/needs")),
        ("enterprise: need form", get(enterprise, lambda i: f"/web/needs/{own[i % len(own)]}/edit")),
        ("match page (broker)", get(broker, lambda i: f"/web/needs/{needs[i % len(needs)]}")),
        ("match page (enterprise)", get(enterprise, lambda i: f"/web/needs/{own[i % len(own)]}")),
    ]
    rows = [measure(name, request, n) for name, request in pages]

    def login(i: int) -> httpx.Response:  # a POST: verifying the argon2 hash is most of it
        client = httpx.Client(base_url=base, timeout=60)
        token = _token(client.get("/web/login").text)
        return client.post("/web/login", data={"username": BROKER[0], "password": BROKER[1], "csrf_token": token})
    rows.append(measure("sign in (POST, argon2)", login, max(5, n // 3), warmup=1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server; default: start one over --home")
    parser.add_argument("--home", default=os.environ.get("TECHMATCH_HOME", "var/techmatch"))
    parser.add_argument("-n", type=int, default=30, help="requests per page")
    parser.add_argument("--create-users", action="store_true", help="create the demo users in --home first")
    args = parser.parse_args()
    if args.create_users:
        for (name, password), extra in ((BROKER, ["--role", "broker"]),
                                        (ENTERPRISE, ["--role", "enterprise", "--enterprise", "E003"])):
            subprocess.run([sys.executable, "-m", "techmatch", "users", "create", "-u", name, "--password", password,
                            *extra, "--exist-ok", "--home", args.home], check=True)
    proc = None
    base = args.url
    if base is None:
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "techmatch", "serve", "--home", args.home, "--port", str(port),
                                 "--log-level", "warning"])
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise SystemExit("the server did not become ready")
    try:
        rows = run(base, args.n)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    print(f"{'page':<28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  n")
    for r in rows:
        flag = "" if r["p95"] < TARGET_MS or r["page"].startswith("match page") else "  over target"
        print(f"{r['page']:<28} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f}  {r['n']}{flag}")


if __name__ == "__main__":
    main()
