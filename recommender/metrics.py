"""The single place where retrieval metrics are computed (by ranx, never by hand-written metric code).

Contract (min_grade = G, default 1):

* evaluated queries are the needs with at least one judgement of grade >= G; a query missing from the run
  counts as 0 for every metric (it is not dropped), queries of the run absent from the qrels are ignored;
* ``ndcg@k`` uses the graded judgements as linear gains (gain = grade, every grade >= 1 is a gain, discount
  log2(rank + 1), Järvelin & Kekäläinen), ideal ranking truncated at k;
* every other metric (recall, mrr, map, precision, ...) is binary: grade >= G is relevant.

Why the data is handed to ranx as numba typed lists of arrays rather than ``ranx.Qrels``/``ranx.Run``:
building those objects goes through numba typed dicts, which costs ~5 s per process even with a warm JIT
cache (~40 s cold), and ``make_comparable`` mutates them. The array interface of ``ranx.evaluate`` runs the
same metric kernels in milliseconds, lets us intern doc ids exactly (ranx's dict path hashes them), and lets
us impose our own deterministic tie-breaking (``recommender.trec.rank_documents``) so in-memory and on-disk runs
score identically.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from numba.core.errors import NumbaTypeSafetyWarning
from numba.typed import List as TypedList

from recommender.trec import rank_documents

__all__ = [
    "DEFAULT_METRICS",
    "calibration_bins",
    "collapse",
    "condensed_run",
    "judged_at_k",
    "judgement_figures",
    "evaluable_queries",
    "evaluate",
    "evaluate_per_query",
    "expected_calibration_error",
    "per_query_scores",
    "recall_at_ks",
    "warm_up",
]

DEFAULT_METRICS: tuple[str, ...] = (
    "ndcg@10",
    "recall@10",
    "recall@50",
    "recall@100",
    "mrr@10",
    "map@100",
    "precision@10",
)

# ranx metric names that use the graded judgements; everything else is fed the binary (grade >= G) copy.
_GRADED_METRICS = frozenset({"ndcg", "ndcg_burges", "dcg", "dcg_burges"})
# Binary metrics that work on the thresholded copy (bpref needs judged non-relevant docs: excluded).
_BINARY_METRICS = frozenset({"recall", "precision", "mrr", "map", "hits", "hit_rate", "f1", "r-precision"})
_METRIC_RE = re.compile(r"^(?P<name>[a-z0-9_\-]+?)(?:@(?P<k>[1-9][0-9]*))?$")

QrelsLike = Mapping[str, Mapping[str, int]]
RunLike = Mapping[str, Mapping[str, float]]


def _check_min_grade(min_grade: int) -> None:
    if isinstance(min_grade, bool) or not isinstance(min_grade, int | np.integer) or min_grade < 1:
        raise ValueError(f"min_grade must be an integer >= 1 (grade 0 means not relevant), got {min_grade!r}")


def _parse_metrics(metrics: Sequence[str] | str) -> list[str]:
    """Validate metric names early: a typo should fail loudly, not surface as a numba error."""
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    if not metrics:
        raise ValueError("at least one metric is required")
    for metric in metrics:
        match = _METRIC_RE.match(metric)
        name = match.group("name") if match else None
        if name not in _GRADED_METRICS | _BINARY_METRICS:
            raise ValueError(
                f"unsupported metric {metric!r}; use one of {sorted(_GRADED_METRICS | _BINARY_METRICS)} "
                "optionally with '@k' (relevance thresholds are set with min_grade, not '-l')"
            )
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"duplicate metric names in {metrics}")
    return metrics


def evaluable_queries(qrels: QrelsLike, min_grade: int = 1) -> list[str]:
    """Needs with at least one judgement of grade >= min_grade, sorted: the denominator of every mean."""
    _check_min_grade(min_grade)
    return sorted(qid for qid, judged in qrels.items() if any(g >= min_grade for g in judged.values()))


def _pairs_array(pairs: Iterable[tuple[float, float]]) -> np.ndarray:
    arr = np.array(list(pairs), dtype=np.float64)
    return np.ascontiguousarray(arr.reshape(-1, 2))


def _to_ranx_arrays(
    qrels: QrelsLike, run: RunLike, qids: Sequence[str], min_grade: int
) -> tuple[TypedList, TypedList, TypedList]:
    """Build the (graded qrels, binary qrels, run) typed lists ranx's metric kernels consume, aligned on qids.

    Doc ids are interned exactly to float ids per query (ranx compares ids as float64); results that were
    never judged for the query get id -1, which matches nothing. Qrels rows are sorted by descending grade
    because ranx computes the ideal DCG by scoring the qrels array as if it were a ranking. Run rows follow
    ``rank_documents`` and get strictly decreasing scores so ranx never re-breaks ties its own way. Missing
    queries become empty (0 x 2) arrays, so every metric is 0 for them.
    """
    graded, binary, ranked = TypedList(), TypedList(), TypedList()
    for qid in qids:
        gains = sorted(((d, g) for d, g in qrels[qid].items() if g >= 1), key=lambda x: (-x[1], x[0]))
        ids = {d: float(i) for i, (d, _) in enumerate(gains)}
        graded.append(_pairs_array((ids[d], g) for d, g in gains))
        binary.append(_pairs_array((ids[d], 1) for d, g in gains if g >= min_grade))
        doc_scores = run.get(qid, {})
        n = len(doc_scores)
        if n and not np.isfinite(np.fromiter(doc_scores.values(), dtype=np.float64, count=n)).all():
            raise ValueError(f"run for need {qid!r} contains non-finite scores")
        arr = np.empty((n, 2), dtype=np.float64)
        arr[:, 0] = np.fromiter((ids.get(d, -1.0) for d, _ in rank_documents(doc_scores)), np.float64, n)
        arr[:, 1] = np.arange(n, 0, -1)
        ranked.append(arr)
    return graded, binary, ranked


def per_query_scores(
    qrels: QrelsLike,
    run: RunLike,
    min_grade: int = 1,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """(evaluable query ids, {metric: per-query scores aligned with the ids}): the core of every caller."""
    from ranx import evaluate as ranx_evaluate  # deferred: importing ranx costs ~2 s

    metrics = _parse_metrics(metrics)
    qids = evaluable_queries(qrels, min_grade)
    if not qids:
        raise ValueError(f"no evaluable queries: no need has a judgement with grade >= min_grade={min_grade}")
    graded, binary, ranked = _to_ranx_arrays(qrels, run, qids, min_grade)
    graded_metrics = [m for m in metrics if _METRIC_RE.match(m).group("name") in _GRADED_METRICS]
    binary_metrics = [m for m in metrics if m not in graded_metrics]
    scores: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        # ranx's parallel kernels trigger a harmless uint64 -> int64 prange index cast warning.
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)
        for judged, group in ((graded, graded_metrics), (binary, binary_metrics)):
            if not group:
                continue
            # rel_lvl stays 1: the binary copy is already thresholded, the graded copy keeps all grades >= 1.
            # A single metric is passed twice: ranx 0.3.x with return_mean=False and one metric indexes its
            # result dict with the bare metric name ("ndcg" for "ndcg@10") and raises KeyError.
            out = ranx_evaluate(judged, ranked, group if len(group) > 1 else group * 2, return_mean=False)
            scores.update({m: np.asarray(out[m], dtype=np.float64) for m in group})
    return qids, {m: scores[m] for m in metrics}


def evaluate_per_query(
    qrels: QrelsLike,
    run: RunLike,
    min_grade: int = 1,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
) -> pd.DataFrame:
    """One row per evaluable need (index ``need_id``), one column per metric: for error analysis and tests."""
    qids, scores = per_query_scores(qrels, run, min_grade, metrics)
    frame = pd.DataFrame(scores, index=pd.Index(qids, name="need_id"))
    return frame


def evaluate(
    qrels: QrelsLike,
    run: RunLike,
    min_grade: int = 1,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over the evaluable needs (missing needs count as 0)."""
    _, scores = per_query_scores(qrels, run, min_grade, metrics)
    return {m: float(np.mean(v)) for m, v in scores.items()}


def recall_at_ks(
    qrels: QrelsLike,
    run: RunLike,
    ks: Iterable[int] = (1, 5, 10, 20, 50, 100),
    min_grade: int = 1,
) -> dict[int, float]:
    """Mean recall@k for each k, for recall curves (how deep must a candidate list be to find the results)."""
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    means = evaluate(qrels, run, min_grade, [f"recall@{k}" for k in ks])
    return {k: means[f"recall@{k}"] for k in ks}


def judged_at_k(qrels: QrelsLike, run: RunLike, k: int = 10, min_grade: int = 1) -> np.ndarray:
    """Per evaluable need, the share of the top k that has a judgement (any grade) for it (ir-measures' Judged@k).

    The denominator is k, as in ir-measures: a list shorter than k, or a need missing from the run, has its
    empty slots counted as unjudged."""
    qids = evaluable_queries(qrels, min_grade)
    shares = np.zeros(len(qids), dtype=np.float64)
    for i, qid in enumerate(qids):
        judged = qrels[qid]
        top = [d for d, _ in rank_documents(run.get(qid, {}))][:k]
        shares[i] = sum(d in judged for d in top) / k
    return shares


def condensed_run(qrels: QrelsLike, run: RunLike) -> dict[str, dict[str, float]]:
    """The run with, for each need, every result that has no judgement for that need removed (Sakai's
    condensed lists): the results below move up, so an unjudged result is neither a gain nor a loss."""
    return {qid: {d: s for d, s in docs.items() if d in qrels.get(qid, {})} for qid, docs in run.items()}


def collapse(
    qrels: QrelsLike, run: RunLike, group_of: Mapping[str, str]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """Qrels and run on duplicate groups instead of results (``group_of``: result id -> group id).

    A group takes its best-ranked member's place in each ranking (members below it are dropped) and, for
    a need, the highest grade any member has for it. Ids missing from ``group_of`` are their own group."""
    grouped_qrels: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        graded: dict[str, int] = {}
        for doc, grade in judged.items():
            gid = group_of.get(doc, doc)
            graded[gid] = max(grade, graded.get(gid, grade))
        grouped_qrels[qid] = graded
    grouped_run: dict[str, dict[str, float]] = {}
    for qid, docs in run.items():
        ranked = rank_documents(docs)
        kept: dict[str, float] = {}
        for position, (doc, _) in enumerate(ranked):
            gid = group_of.get(doc, doc)
            if gid not in kept:
                kept[gid] = float(len(ranked) - position)  # strictly decreasing: the best member's rank
        grouped_run[qid] = kept
    return grouped_qrels, grouped_run


def judgement_figures(qrels: QrelsLike, run: RunLike, min_grade: int = 1) -> dict[str, float]:
    """``judged@10`` and ``condensed_ndcg@10``: how much of the top 10 was ever judged, and nDCG@10 on the
    judged results alone (the contract's keys that say what the other figures could not see)."""
    condensed = evaluate(qrels, condensed_run(qrels, run), min_grade, ["ndcg@10"])["ndcg@10"]
    return {"judged@10": float(np.mean(judged_at_k(qrels, run, 10, min_grade))), "condensed_ndcg@10": condensed}


def calibration_bins(probability: Sequence[float], outcome: Sequence[bool], bins: int = 10) -> pd.DataFrame:
    """Reliability-diagram bins: equal-width bins of the predicted probability (the last one closed), with
    each non-empty bin's pair count, mean predicted probability and observed frequency of the outcome."""
    p = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    y = np.asarray(outcome, dtype=np.float64)
    if p.shape != y.shape or not len(p):
        raise ValueError("probability and outcome need the same, non-zero length")
    which = np.minimum((p * bins).astype(int), bins - 1)
    frame = pd.DataFrame({"bin": which, "predicted": p, "observed": y})
    table = frame.groupby("bin").agg(pairs=("predicted", "size"), predicted=("predicted", "mean"),
                                     observed=("observed", "mean"))
    table.insert(0, "low", table.index / bins)
    return table.reset_index(drop=True)


def expected_calibration_error(probability: Sequence[float], outcome: Sequence[bool], bins: int = 10) -> float:
    """ECE (Naeini et al. 2015; Guo et al. 2017): the pair-weighted mean over equal-width bins of
    |observed frequency - mean predicted probability|. Hand-written because scikit-learn has none and the
    libraries that do (netcal, torchmetrics) bring torch; a probability that is exactly right scores 0."""
    table = calibration_bins(probability, outcome, bins)
    return float((table["pairs"] * (table["observed"] - table["predicted"]).abs()).sum() / table["pairs"].sum())


def warm_up() -> float:
    """Trigger ranx's numba JIT compilation (or cache load) once, e.g. at service start; returns seconds."""
    start = time.perf_counter()
    qrels = {f"q{i}": {"d1": 2, "d2": 1} for i in range(12)}  # >= 10 queries: ranx's parallel code path
    run = {f"q{i}": {"d2": 1.0, "d3": 0.5} for i in range(12)}
    evaluate(qrels, run, 1, DEFAULT_METRICS)
    return time.perf_counter() - start
