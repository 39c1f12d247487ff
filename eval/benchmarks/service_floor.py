"""The CPU each /match request must spend, and the latency floor that follows at N concurrent clients.

A closed-loop load test with N clients on C cores can at best run at X = C / D requests per second, where
D is the CPU one request needs; by Little's law its mean latency is then at least N / X = N * D / C, and
a percentile (p95) sits above the mean. This script measures D's two unavoidable parts in-process, on
one thread each, for free-text needs the index has never seen: the e5 encoding of the need's focus and
the hybrid search given that vector (BM25, char TF-IDF, FAISS, fusion, explanations), both in batches
as the service runs them. HTTP, JSON and the load generator come on top, and the GIL is not modelled.

    python -m eval.benchmarks.service_floor --index var/full/index --needs /tmp/world11/needs.jsonl
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread, as `techmatch serve`
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402

from recommender.pipeline import open_index  # noqa: E402
from recommender.records import free_text_need  # noqa: E402
from recommender.settings import PipelineSettings  # noqa: E402


def need_texts(path: Path, limit: int) -> list[str]:
    """Title + description of the first ``limit`` needs with distinct titles (as scripts/loadtest.py sends)."""
    texts, seen = [], set()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["title"] in seen:
                continue
            seen.add(row["title"])
            texts.append(f"{row['title']}。{row.get('description', '')}".strip("。")[:2000])
            if len(texts) >= limit:
                break
    return texts


def cpu_ms(fn, items: list) -> float:
    start = time.process_time()
    for item in items:
        fn(item)
    return (time.process_time() - start) / len(items) * 1000


def main(
    index: Annotated[Path, typer.Option(help="index folder holding results/ (e.g. var/full/index)")],
    needs: Annotated[Path, typer.Option(help="JSON Lines needs the index has never seen (another world's seed)")],
    n: Annotated[int, typer.Option(help="query texts to time")] = 200,
    clients: Annotated[int, typer.Option(help="concurrent clients the floor is worked out for")] = 8,
    batch: Annotated[int, typer.Option(help="searches per batch (8 clients on 2 cores: about 6)")] = 6,
) -> None:
    results = open_index(index / "results", "result", PipelineSettings())
    queries = [free_text_need(t).as_query() for t in need_texts(needs, n)]
    dense = results.signals["dense"]
    results.search(queries[:2], 10)  # warm-up: lazy structures, jieba dictionary
    groups = [queries[i:i + batch] for i in range(0, len(queries), batch)]
    encode = cpu_ms(lambda g: dense.embedder.embed_queries([q.dense_text for q in g]), groups) / batch
    dense.embed_queries(queries)  # now cached: the search below pays no encoding
    search = cpu_ms(lambda g: results.search(g, 10), groups) / batch
    cores = os.cpu_count() or 1
    per_request = encode + search
    ceiling = cores / per_request * 1000
    floor = clients * per_request / cores
    print(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores", "results": len(results),
        "queries": len(queries), "encode_cpu_ms": round(encode, 1), "search_cpu_ms": round(search, 1),
        "request_cpu_ms_floor": round(per_request, 1), "max_requests_per_s": round(ceiling, 1),
        f"mean_latency_floor_ms_at_{clients}_clients": round(floor, 1),
    }, ensure_ascii=False))


if __name__ == "__main__":
    typer.run(main)
