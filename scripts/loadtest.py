"""Load test of a running techmatch service: top-k matching of free-text needs at several concurrencies.

Sends only to a loopback address, and every level is bounded by a request count and a duration, so it
always stops by itself. Prints one line per level and, with --json, a JSON object last.

    python scripts/loadtest.py --url http://127.0.0.1:8000 --key tm_... --concurrency 1,8 --requests 400

With ``--writes`` (a broker key), one more client sends bulk writes (``POST /results/bulk``, ``--bulk``
new results each) for as long as the level runs, and after each acknowledged write matches every one of
its titles, one after another (``--checks together``: all at once, a burst beside the clients): a written
result missing from the top 10 of its own title counts as not visible. The written results are deleted at
the end; give each run against one server its own ``--write-seed``. Any non-2xx answer, to a match or a
write, is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from eval.latency import percentiles

DEFAULT_TEXTS = [
    "动力电池正极材料循环寿命提升，循环1000次容量保持率大于90%",
    "冲压零件表面划痕裂纹的视觉自动检测，替代人工目检",
    "养殖场需要不含抗生素的饲料配方，保证牛羊生长性能",
    "新能源汽车电驱系统碳化硅功率模块散热与开关损耗",
    "光伏组件户外使用寿命短、发电量偏低，寻求柔性光伏技术",
    "工业废水中重金属离子的高效低成本去除工艺",
    "输变电设备复合绝缘子的绝缘性能与老化监测",
    "基于深度学习的设备故障预测与健康管理系统",
]


def loopback_only(url: str) -> str:
    """Refuse any target that is not this machine: a load test must never leave the loopback range."""
    host = urlparse(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        raise SystemExit(f"error: cannot resolve '{host}'") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise SystemExit(f"error: {url} is not a loopback address (127.0.0.0/8 or ::1); refusing to load it")
    return url.rstrip("/")


def load_texts(path: Path | None, limit: int) -> list[str]:
    """Query texts: need titles+descriptions from a JSON Lines file, or a built-in set."""
    if path is None:
        return DEFAULT_TEXTS
    texts = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(f"{row['title']}。{row.get('description', '')}".strip("。")[:2000])
            if len(texts) >= limit:
                break
    return texts


def write_titles(count: int, seed: int = 99) -> list[str]:
    """Titles for the results the writes add: the demo world's generator with a seed of its own, each once."""
    from data.synthetic import generate_world

    seen: dict[str, None] = {}
    for row in generate_world(seed=seed, n_results=count * 2, n_needs=0, n_enterprises=1, n_funds=0).results:
        seen.setdefault(row["title"], None)
    return list(seen)[:count]


class Writes:
    """Bulk writes beside the matches, each checked by a match on its own titles right after it is acknowledged."""

    def __init__(self, bulk: int, titles: list[str], level: int, together: bool = False) -> None:
        self.bulk, self.titles, self.level, self.together = bulk, titles, level, together
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.written: list[str] = []
        self.invisible: list[str] = []
        self.checked = 0

    async def run(self, http: httpx.AsyncClient, done: asyncio.Event) -> None:
        number = 0
        while not done.is_set() and len(self.titles) >= self.bulk:
            chunk = [self.titles.pop() for _ in range(self.bulk)]
            ids = [f"LT{self.level}-{number}-{i}" for i in range(self.bulk)]
            number += 1
            body = [{"id": rid, "title": t, "abstract": t} for rid, t in zip(ids, chunk)]
            start = time.perf_counter()
            try:
                resp = await http.post("/results/bulk", json=body)
                status = str(resp.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if status != "201":
                self.errors[status] = self.errors.get(status, 0) + 1
                continue
            self.latencies.append(time.perf_counter() - start)
            self.written += ids
            # the next matches after the acknowledgement: each title must find its result
            asks = [http.post("/match", json={"text": t, "k": 10, "explain": False}) for t in chunk]
            if self.together:  # all at once: a burst of `bulk` more requests in flight beside the clients
                answers = await asyncio.gather(*asks, return_exceptions=True)
            else:  # one after another: the writer is one more client, as a broker's upload is
                answers = []
                for ask in asks:
                    try:
                        answers.append(await ask)
                    except httpx.HTTPError as exc:
                        answers.append(exc)
            for rid, answer in zip(ids, answers):
                self.checked += 1
                if isinstance(answer, Exception) or answer.status_code != 200:
                    key = type(answer).__name__ if isinstance(answer, Exception) else str(answer.status_code)
                    self.errors[key] = self.errors.get(key, 0) + 1
                elif rid not in [m["id"] for m in answer.json()["matches"]]:
                    self.invisible.append(rid)

    async def clean_up(self, http: httpx.AsyncClient) -> None:
        for rid in self.written:
            await http.delete(f"/results/{rid}")

    def summary(self) -> dict:
        out = {"bulk_writes": len(self.latencies), "records_written": len(self.written),
               "write_errors": self.errors, "visibility_checked": self.checked, "not_visible": len(self.invisible)}
        if self.latencies:
            out.update({f"write_{name}": round(value, 1) for name, value in percentiles(self.latencies).items()})
        return out


async def run_level(url: str, key: str, texts: list[str], concurrency: int, requests: int, duration: float,
                    k: int, explain: bool, writes: Writes | None = None) -> dict:
    """``concurrency`` clients each sending one request after another until the count or time is used up
    (and, with ``writes``, one more client writing beside them)."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + duration

    async def client(worker: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < requests and time.perf_counter() < deadline:
            text = texts[sent % len(texts)]  # a new text per request while they last
            sent += 1
            start = time.perf_counter()
            try:
                resp = await http.post("/match", json={"text": text, "k": k, "explain": explain})
                status = str(resp.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            elapsed = time.perf_counter() - start
            if status == "200":
                latencies.append(elapsed)
            else:
                errors[status] = errors.get(status, 0) + 1

    connections = concurrency + ((writes.bulk if writes.together else 1) + 1 if writes else 0)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60, limits=limits) as http:
        await http.post("/match", json={"text": texts[0], "k": k})  # warm-up, not counted
        done = asyncio.Event()

        async def matches() -> None:
            await asyncio.gather(*(client(w, http) for w in range(concurrency)))
            done.set()

        start = time.perf_counter()
        await asyncio.gather(matches(), *([writes.run(http, done)] if writes else []))
        wall = time.perf_counter() - start
        if writes:
            await writes.clean_up(http)
    out = {"concurrency": concurrency, "requests": len(latencies), "errors": errors, "seconds": round(wall, 2),
           "requests_per_s": round(len(latencies) / wall, 2) if wall else 0.0}
    if latencies:
        out.update({name: round(value, 1) for name, value in percentiles(latencies).items()})
    if writes:
        out.update(writes.summary())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL (loopback only)")
    ap.add_argument("--key", required=True, help="an API key (techmatch keys create --role broker)")
    ap.add_argument("--concurrency", default="1,8", help="comma-separated client counts, e.g. 1,8")
    ap.add_argument("--requests", type=int, default=300, help="requests per level (upper bound)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per level (upper bound)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--no-explain", action="store_true", help="ask for matches without shared key terms")
    ap.add_argument("--needs", type=Path, help="JSON Lines needs to use as query texts (title + description)")
    ap.add_argument("--json", action="store_true", help="print all levels as one JSON object (last line)")
    ap.add_argument("--writes", action="store_true", help="bulk writes beside the matches (a broker key)")
    ap.add_argument("--bulk", type=int, default=10, help="results per bulk write (with --writes)")
    ap.add_argument("--checks", choices=("one-by-one", "together"), default="one-by-one",
                    help="match a write's titles one after another (the writer is one client) or all at once")
    ap.add_argument("--write-seed", type=int, default=99,
                    help="seed of the written titles: give each run against one server its own, or the second "
                         "run's writes find their embeddings cached by the first's")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.duration <= 0:
        ap.error("--requests and --duration must be positive")
    url = loopback_only(args.url)
    counts = [int(c) for c in args.concurrency.split(",")]
    # Each level gets its own slice of texts (as many as it sends, when the file has enough), so no level
    # is helped by embeddings the server cached for an earlier one.
    texts = load_texts(args.needs, args.requests * len(counts))
    levels = []
    for number, concurrency in enumerate(counts):
        own = texts[number * args.requests:(number + 1) * args.requests]
        own = own if len(own) == args.requests else texts
        writes = Writes(args.bulk, write_titles(args.bulk * 400, seed=args.write_seed + number), number,
                        args.checks == "together") if args.writes else None
        result = asyncio.run(run_level(url, args.key, own, concurrency, args.requests, args.duration, args.k,
                                       not args.no_explain, writes))
        result["distinct_texts"] = min(len(own), result["requests"] + sum(result["errors"].values()))
        levels.append(result)
        print(f"clients={concurrency:<3} {result['requests']} ok, errors={result['errors']}, "
              f"{result['requests_per_s']} req/s, p50={result.get('p50')} ms, p95={result.get('p95')} ms, "
              f"p99={result.get('p99')} ms", file=sys.stderr)
        if writes:
            print(f"  writes: {result['bulk_writes']} bulk requests ({result['records_written']} results), "
                  f"errors={result['write_errors']}, p50={result.get('write_p50')} ms, "
                  f"p95={result.get('write_p95')} ms; {result['visibility_checked']} checked by the next match, "
                  f"{result['not_visible']} not visible", file=sys.stderr)
    if args.json:
        print(json.dumps({"url": url, "k": args.k, "explain": not args.no_explain, "levels": levels}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
