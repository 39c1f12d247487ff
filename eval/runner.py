"""``techmatch eval``: index the results, rank them for every judged need, and measure (the contract).

Timing is split the way the contract asks: ``index_seconds`` covers building the index of R (embedding
included, cache included: point TECHMATCH_CACHE_DIR at an empty folder for a cold figure) and
``query_seconds`` ranking all queries; per-query latencies are kept for the percentile plots.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from recommender import spreadsheet
from recommender.errors import UserError
from recommender.hybrid import HybridIndex
from recommender.metrics import DEFAULT_METRICS, evaluable_queries, evaluate, evaluate_per_query
from recommender.pipeline import new_index
from recommender.records import Record, load_records
from recommender.settings import PipelineSettings
from recommender.trec import read_qrels, write_run

RUN_DEPTH = 100  # the deepest cut-off the contract reports (recall@100)


def rank_all(
    index: HybridIndex, needs: list[Record], depth: int = RUN_DEPTH, progress: bool = True
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """A run (need id -> result id -> fused score) and each query's latency in seconds."""
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    for need in tqdm(needs, desc="ranking", unit="need", disable=not progress or len(needs) < 20):
        start = time.perf_counter()
        matches = index.search([need.as_query()], depth, explain=False)[0]
        latencies.append(time.perf_counter() - start)
        run[need.id] = {m.id: m.score for m in matches}
    return run, latencies


def run_evaluation(
    needs_path: Path, results_path: Path, qrels_path: Path, min_grade: int = 1,
    settings: PipelineSettings | None = None, train_needs_path: Path | None = None,
    train_qrels_path: Path | None = None, per_query_path: Path | None = None, run_path: Path | None = None,
    plot_dir: Path | None = None, skip_invalid: bool = False, cross_encoder: Any = None,
    work: Path | None = None,
) -> dict[str, Any]:
    """Figures for one system on one judged data set (see CONTRACT.md for the keys)."""
    settings = settings or PipelineSettings()
    needs, _ = load_records(needs_path, "need", skip_invalid)
    results, _ = load_records(results_path, "result", skip_invalid)
    qrels = read_qrels(qrels_path)
    if not qrels:
        raise UserError(f"{qrels_path}: no judgements in this qrels file")
    wanted = set(evaluable_queries(qrels, min_grade))
    if not wanted:
        raise UserError(f"{qrels_path}: no need has a judgement with grade >= {min_grade}; lower --min-grade")
    eval_needs = [n for n in needs if n.id in wanted]
    if not eval_needs:
        raise UserError(f"none of the {len(wanted)} judged needs of {qrels_path} is in {needs_path}: "
                        "are they from the same data set?")

    start = time.perf_counter()
    index = new_index("result", settings)
    index.build(results)
    index_seconds = time.perf_counter() - start

    reranker = None
    if train_needs_path is not None and train_qrels_path is not None:
        from recommender.learning.training import train_reranker_from_files

        # cross_encoder: a CrossEncoderConfig (its probabilities become re-ranker features), or None
        reranker = train_reranker_from_files(index, train_needs_path, train_qrels_path, results, cross_encoder, work)

    start = time.perf_counter()
    run, latencies = rank_all(index, eval_needs)
    if reranker is not None:
        run = reranker.rerank_run(index, eval_needs, run)
    query_seconds = time.perf_counter() - start

    figures: dict[str, Any] = {"queries": len(eval_needs)}
    figures.update({k: round(v, 4) for k, v in evaluate(qrels, run, min_grade, DEFAULT_METRICS).items()})
    figures.update({
        "index_seconds": round(index_seconds, 2), "query_seconds": round(query_seconds, 2),
        "model": settings.model if "dense" in settings.signals else None, "signals": ",".join(settings.signals),
        "min_grade": min_grade, "results": len(results), "learned": reranker is not None,
        "cross_encoder": reranker is not None and reranker.cross_encoder is not None,
    })
    if per_query_path is not None:
        frame = evaluate_per_query(qrels, run, min_grade, DEFAULT_METRICS)
        titles = {n.id: n.title for n in needs}
        frame.insert(0, "title", [titles.get(q, "") for q in frame.index])
        spreadsheet.write_csv(frame, per_query_path, index=True, encoding="utf-8-sig")
    if run_path is not None:
        write_run(run, run_path, tag=f"techmatch-{'-'.join(settings.signals)}")
    if plot_dir is not None:
        from eval.plots import write_eval_plots

        write_eval_plots(
            plot_dir, qrels=qrels, runs={"techmatch": run}, min_grade=min_grade, latencies={"techmatch": latencies}
        )
    return figures
