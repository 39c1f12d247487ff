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
from recommender.metrics import (
    DEFAULT_METRICS,
    collapse,
    evaluable_queries,
    evaluate,
    evaluate_per_query,
    judgement_figures,
)
from recommender.pipeline import new_index
from recommender.records import Record, load_records
from recommender.settings import PipelineSettings
from recommender.trec import read_qrels, write_run

RUN_DEPTH = 100  # the deepest cut-off the contract reports (recall@100)


def rank_all(
    index: HybridIndex, needs: list[Record], depth: int = RUN_DEPTH, progress: bool = True,
    collapse_duplicates: bool = False,
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """A run (need id -> result id -> fused score) and each query's latency in seconds; with
    ``collapse_duplicates`` each duplicate group appears once (so the run holds ``depth`` groups)."""
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    for need in tqdm(needs, desc="ranking", unit="need", disable=not progress or len(needs) < 20):
        start = time.perf_counter()
        matches = index.search([need.as_query()], depth, explain=False, collapse=collapse_duplicates)[0]
        latencies.append(time.perf_counter() - start)
        run[need.id] = {m.id: m.score for m in matches}
    return run, latencies


def run_evaluation(
    needs_path: Path, results_path: Path, qrels_path: Path, min_grade: int = 1,
    settings: PipelineSettings | None = None, train_needs_path: Path | None = None,
    train_qrels_path: Path | None = None, per_query_path: Path | None = None, run_path: Path | None = None,
    plot_dir: Path | None = None, skip_invalid: bool = False, cross_encoder: Any = None,
    work: Path | None = None, collapse_duplicates: bool = False,
) -> dict[str, Any]:
    """Figures for one system on one judged data set (see CONTRACT.md for the keys).

    With ``collapse_duplicates`` every figure is computed on the index's duplicate groups
    (``recommender.metrics.collapse``): a group takes its best member's rank and its best member's grade."""
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
    run, latencies = rank_all(index, eval_needs, collapse_duplicates=collapse_duplicates)
    if reranker is not None:
        run = reranker.rerank_run(index, eval_needs, run)
    query_seconds = time.perf_counter() - start

    scored_qrels, scored_run = qrels, run
    if collapse_duplicates:
        scored_qrels, scored_run = collapse(qrels, run, index.duplicates.mapping())
    figures: dict[str, Any] = {"queries": len(eval_needs)}
    figures.update({k: round(v, 4) for k, v in evaluate(scored_qrels, scored_run, min_grade, DEFAULT_METRICS).items()})
    figures.update({k: round(v, 4) for k, v in judgement_figures(scored_qrels, scored_run, min_grade).items()})
    figures.update({
        "index_seconds": round(index_seconds, 2), "query_seconds": round(query_seconds, 2),
        "model": settings.model if "dense" in settings.signals else None, "signals": ",".join(settings.signals),
        "min_grade": min_grade, "results": len(results), "learned": reranker is not None,
        "cross_encoder": reranker is not None and reranker.cross_encoder is not None,
        "collapsed": collapse_duplicates, "duplicate_groups": len(index.duplicates.groups()),
        "top10_repeats": _top10_repeats(run, index.duplicates.group_of),
    })
    if per_query_path is not None:
        frame = evaluate_per_query(scored_qrels, scored_run, min_grade, DEFAULT_METRICS)
        titles = {n.id: n.title for n in needs}
        frame.insert(0, "title", [titles.get(q, "") for q in frame.index])
        spreadsheet.write_csv(frame, per_query_path, index=True, encoding="utf-8-sig")
    if run_path is not None:
        write_run(run, run_path, tag=f"techmatch-{'-'.join(settings.signals)}")
    if plot_dir is not None:
        from eval.plots import write_eval_plots

        write_eval_plots(
            plot_dir, qrels=scored_qrels, runs={"techmatch": scored_run}, min_grade=min_grade,
            latencies={"techmatch": latencies},
        )
    return figures


def _top10_repeats(run: dict[str, dict[str, float]], group_of: Any) -> int:
    """How many needs' top 10 hold two members of one duplicate group (0 when lists are collapsed)."""
    from recommender.trec import rank_documents

    count = 0
    for docs in run.values():
        top = [group_of(d) for d, _ in rank_documents(docs)[:10]]
        count += len(set(top)) < len(top)
    return count
