"""Measure one system on one judged data set, in a process of its own (so its peak memory is its own).

It calls ``eval.runner.run_evaluation``, the very function behind ``techmatch eval``, so the quality
figures are exactly the contract's. Two things are observed on the way, by wrapping (not replacing)
functions it calls: each query's latency (``rank_all`` measures it but ``run_evaluation`` does not return
it) and the embedding-cache misses of the embedders the pipeline creates (cold or warm cache).

    python -m eval.benchmarks.system_run --needs N --results R --qrels Q --min-grade 2 \
        --signals dense,bm25,char --run out.run --out out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import eval.runner as runner
import recommender.pipeline as pipeline
from recommender.settings import PipelineSettings


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def uncached_query_embedding_ms(embedder: Any, needs: Path, n: int = 50) -> dict[str, float]:
    """Latency of embedding one need title with the bare model (no cache): the part of a dense query's
    latency that a warm embedding cache hides in the per-query figures of a rerun."""
    from eval.latency import percentiles
    from recommender.records import load_records

    model = getattr(embedder, "inner", embedder)
    records, _ = load_records(needs, "need")
    texts = [r.as_query().dense_text for r in records[:n]]
    model.embed_queries(texts[:2], progress=False)  # first call pays one-off costs
    latencies = []
    for text in texts:
        start = time.perf_counter()
        model.embed_queries([text], progress=False)
        latencies.append(time.perf_counter() - start)
    return percentiles(latencies)


def measure(
    needs: Path, results: Path, qrels: Path, min_grade: int, settings: PipelineSettings,
    run_path: Path | None = None, per_query_path: Path | None = None,
) -> dict[str, Any]:
    """Contract figures of ``run_evaluation`` plus per-query latencies (s), records/s, CPU time and peak RSS."""
    latencies: list[float] = []
    rank_all = runner.rank_all

    def observed_rank_all(*args: Any, **kwargs: Any) -> Any:
        run, seconds = rank_all(*args, **kwargs)
        latencies.extend(seconds)
        return run, seconds

    runner.rank_all = observed_rank_all
    embedders: list[Any] = []
    create_embedder = pipeline.create_embedder

    def observed_create_embedder(*args: Any, **kwargs: Any) -> Any:
        embedder = create_embedder(*args, **kwargs)
        embedders.append(embedder)
        return embedder

    pipeline.create_embedder = observed_create_embedder
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        figures = runner.run_evaluation(
            needs_path=needs, results_path=results, qrels_path=qrels, min_grade=min_grade, settings=settings,
            run_path=run_path, per_query_path=per_query_path,
        )
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        runner.rank_all = rank_all
        pipeline.create_embedder = create_embedder
    figures["records_per_second"] = round(figures["results"] / max(figures["index_seconds"], 1e-9), 1)
    figures["wall_seconds"] = round(wall, 2)
    # texts the model had to embed (cache misses: result titles and need titles); 0 = fully warm cache
    figures["newly_embedded"] = sum(getattr(e, "misses", 0) for e in embedders)
    if embedders:
        figures["query_embedding_ms"] = uncached_query_embedding_ms(embedders[0], needs)
    figures["cpu_seconds"] = round(cpu, 2)  # all threads: on a shared machine, less distorted than wall time
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    figures["latencies_s"] = latencies
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.benchmarks.system_run", description=__doc__.splitlines()[0])
    ap.add_argument("--needs", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--qrels", type=Path, required=True)
    ap.add_argument("--min-grade", type=int, default=1)
    ap.add_argument("--signals", default="dense,bm25,char")
    ap.add_argument("--model", default="e5-small")
    ap.add_argument("--run", type=Path, help="write the TREC run here")
    ap.add_argument("--per-query", type=Path, help="write per-need figures (CSV) here")
    ap.add_argument("--out", type=Path, required=True, help="write the figures (JSON) here")
    args = ap.parse_args(argv)
    settings = PipelineSettings(signals=args.signals, model=args.model)  # cache dir from TECHMATCH_CACHE_DIR
    figures = measure(args.needs, args.results, args.qrels, args.min_grade, settings, args.run, args.per_query)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, ensure_ascii=False), encoding="utf-8")
    summary = {k: v for k, v in figures.items() if k != "latencies_s"}
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
