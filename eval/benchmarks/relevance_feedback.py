"""Relevance feedback on the residual collection of bdci2019 dev: does judging the top 5 improve the rest?

    python -m eval.benchmarks.relevance_feedback [--seeds 5] [--folds 5] [--json F]

Each dev need's whole judged pool (about 30 results) is ranked with the default pipeline (each signal's
score for the pair, ranked within the pool, fused by the pipeline's weighted reciprocal ranks); the grades
of the top ``--reveal`` (5) are revealed, the rest is re-ranked by a feedback method, and nDCG@10 is scored
on what was not revealed (graded gains, needs with a grade >= 2 left), paired by need against the same
residual without feedback. Revealed grades are used two ways: graded (0-3, as a technology manager grades)
and binary (相关 = grade >= 2, 不相关 otherwise: the page's buttons).

Every learned method is cross-validated over needs: its weights (coordinate ascent on the mean residual
nDCG@10) are chosen on the training folds and scored on the held-out needs, folds reshuffled for each of
``--seeds`` seeds; per need the held-out figures are averaged over the seeds. ``selected`` chooses the
method itself on the training folds as well, so its figure is the honest headline for what is shipped.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from scipy import stats
from sklearn.model_selection import KFold

from recommender.learning.relevance import (
    FEATURES,
    GRADE_WEIGHTS,
    FeedbackPool,
    duplicates_of_rejected,
    feedback_features,
    pool_from_index,
)
from recommender.metrics import per_query_scores
from recommender.pipeline import new_index
from recommender.records import load_records
from recommender.trec import read_qrels

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "bdci2019"
GRID = (-4.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0)

# Each learned method: the features it may weigh (``base`` is always there, weight 1).
FAMILIES: dict[str, tuple[str, ...]] = {
    "dense neighbours": tuple(f for f in FEATURES if f.startswith("dense_")),
    "char neighbours": tuple(f for f in FEATURES if f.startswith("char_")),
    "dense + char neighbours": tuple(f for f in FEATURES if f.startswith(("dense_", "char_"))),
    "per-need signal weights": ("per_need",),
    "all: neighbours + per-need weights": tuple(f for f in FEATURES if f != "base"),
    "all, signed (accepted up, rejected down)": tuple(f for f in FEATURES if f != "base"),
}
SHIPPED = "all, signed (accepted up, rejected down)"
SIGNED = {SHIPPED}  # families whose weights keep the page's promise


def _allowed_values(feature: str, signed: bool) -> tuple[float, ...]:
    """The grid of one weight; signed: similarity to accepted results >= 0, to rejected ones <= 0."""
    if not signed or "_pos_" not in feature and "_neg_" not in feature:
        return GRID
    return tuple(v for v in GRID if (v >= 0 if "_pos_" in feature else v <= 0))


@dataclass
class Need:
    """One need's residual: its candidates after the revealed ones, in base order, with their features."""

    id: str
    ids: list[str]  # residual result ids, base order
    grades: np.ndarray  # residual grades
    features: dict[str, np.ndarray]  # feedback type ('graded', 'binary') -> (residual, FEATURES)
    rocchio: dict[str, dict[str, np.ndarray]]  # feedback type -> space -> residual scores of the fused Rocchio
    duplicates: dict[str, np.ndarray]  # feedback type -> residual rows that nearly duplicate a rejected result


def _pool_order(pool: FeedbackPool, names: Sequence[str], weights: dict[str, float], rrf_k: int) -> np.ndarray:
    """The default pipeline's order of the pool: each signal ranked within it, weighted reciprocal ranks."""
    fused = np.zeros(len(pool.ids))
    for column, name in enumerate(names):
        order = sorted(range(len(pool.ids)), key=lambda i: (-pool.signals[i, column], pool.ids[i]))
        ranks = np.empty(len(order))
        ranks[order] = np.arange(1, len(order) + 1)
        fused += weights.get(name, 1.0) / (rrf_k + ranks)
    return np.array(sorted(range(len(pool.ids)), key=lambda i: (-fused[i], pool.ids[i])))


def _fused_with(signals: np.ndarray, replaced: int, scores: np.ndarray, names: Sequence[str],
                weights: dict[str, float], rrf_k: int) -> np.ndarray:
    """Reciprocal-rank fusion of the residual's signals with one signal's scores replaced (Rocchio)."""
    fused = np.zeros(len(signals))
    for column, name in enumerate(names):
        values = scores if column == replaced else signals[:, column]
        order = np.argsort(-values, kind="stable")
        ranks = np.empty(len(order))
        ranks[order] = np.arange(1, len(order) + 1)
        fused += weights.get(name, 1.0) / (rrf_k + ranks)
    return fused


def _rocchio(pool: FeedbackPool, query_vector: np.ndarray, space: str, rows: np.ndarray, weights: np.ndarray,
             beta: float = 0.75, gamma: float = 0.15) -> np.ndarray:
    """Classic Rocchio: q' = q + beta * centroid(accepted) - gamma * centroid(rejected), cosine with q'."""
    vectors = pool.dense if space == "dense" else pool.chars.toarray()
    q = query_vector.astype(np.float64).copy()
    if (weights > 0).any():
        q += beta * vectors[rows[weights > 0]].mean(axis=0)
    if (weights < 0).any():
        q -= gamma * vectors[rows[weights < 0]].mean(axis=0)
    return vectors @ (q / (np.linalg.norm(q) or 1.0))


def prepare(data: Path, reveal: int) -> tuple[list[Need], dict, dict]:
    needs, _ = load_records(data / "needs.dev.jsonl", "need")
    results, _ = load_records(data / "results.jsonl", "result")
    qrels = read_qrels(data / "qrels.dev.txt")
    start = time.perf_counter()
    index = new_index("result")
    index.build(results)
    index.prepare()
    timings = {"index_seconds": round(time.perf_counter() - start, 1)}
    names = list(index.signals)
    dense, char = index.signals["dense"], index.signals["char"]
    out, full_run = [], {}
    start = time.perf_counter()
    for need in needs:
        judged = {r: g for r, g in qrels.get(need.id, {}).items() if r in index.records}
        if len(judged) <= reveal:
            continue
        query = need.as_query()
        pool = pool_from_index(index, query, sorted(judged))
        order = _pool_order(pool, names, index.weights, index.rrf_k)
        ids = [pool.ids[i] for i in order]
        pool = pool_from_index(index, query, ids)  # base order: rank 1 first
        full_run[need.id] = {d: float(len(ids) - i) for i, d in enumerate(ids)}
        grades = np.array([judged[d] for d in ids])
        shown = np.arange(reveal)
        rest = np.arange(reveal, len(ids))
        qd = dense.embed_queries([query])[0]
        qc = char._transform([query.text]).toarray()[0]
        features, rocchio, duplicates = {}, {}, {}
        for kind in ("graded", "binary"):
            weights = np.array([GRADE_WEIGHTS[int(g)] if kind == "graded" else (1.0 if g >= 2 else -1.0)
                                for g in grades[shown]])
            features[kind] = feedback_features(pool, dict(zip(shown.tolist(), weights)))[rest]
            duplicates[kind] = duplicates_of_rejected(pool, dict(zip(shown.tolist(), weights)))[rest]
            rocchio[kind] = {}
            for space, q in (("char", qc), ("dense", qd)):
                new = _rocchio(pool, q, space, shown, weights)
                rocchio[kind][space] = _fused_with(pool.signals[rest], names.index(space), new[rest], names,
                                                   index.weights, index.rrf_k)
        out.append(Need(need.id, ids[reveal:], grades[reveal:], features, rocchio, duplicates))
    timings["feature_seconds"] = round(time.perf_counter() - start, 1)
    judged_qrels = {n: {r: g for r, g in qrels[n].items()} for n in full_run}
    return out, {"full": (judged_qrels, full_run)}, timings


def _ndcg10(grades: np.ndarray, scores: np.ndarray) -> float:
    """nDCG@10 with linear gains (ranx's ``ndcg``), ties in base order: for the coordinate ascent only."""
    order = np.argsort(-scores, kind="stable")[:10]
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = float((grades[order] * discounts[: len(order)]).sum())
    ideal = np.sort(grades)[::-1][:10]
    idcg = float((ideal * discounts[: len(ideal)]).sum())
    return dcg / idcg if idcg else 0.0


def _mean_ndcg(needs: Sequence[Need], score: Callable[[Need], np.ndarray]) -> float:
    return float(np.mean([_ndcg10(n.grades, score(n)) for n in needs])) if needs else 0.0


def fit_weights(needs: Sequence[Need], kind: str, allowed: Sequence[str], passes: int = 3,
                signed: bool = False) -> np.ndarray:
    """Coordinate ascent on the mean residual nDCG@10 of ``needs`` over the ``allowed`` features' weights."""
    w = np.zeros(len(FEATURES))
    w[0] = 1.0
    columns = [FEATURES.index(f) for f in allowed]
    best = _mean_ndcg(needs, lambda n: n.features[kind] @ w)
    for _ in range(passes):
        improved = False
        for c in columns:
            for value in _allowed_values(FEATURES[c], signed):
                if value == w[c]:
                    continue
                trial = w.copy()
                trial[c] = value
                got = _mean_ndcg(needs, lambda n, t=trial: n.features[kind] @ t)
                if got > best + 1e-9:
                    best, w, improved = got, trial, True
        if not improved:
            break
    return w


def _cross_validate(needs: list[Need], kind: str, seeds: int, folds: int) -> tuple[dict, dict]:
    """Held-out scores (method -> need id -> score averaged over seeds) and the weights each fold chose."""
    held: dict[str, dict[str, list[float]]] = {}
    chosen: dict[str, list[str]] = {"selected": []}
    for seed in range(seeds):
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(needs):
            training = [needs[i] for i in train]
            fitted = {name: fit_weights(training, kind, allowed, signed=name in SIGNED)
                      for name, allowed in FAMILIES.items()}
            train_score = {name: _mean_ndcg(training, lambda n, w=w: n.features[kind] @ w)
                           for name, w in fitted.items()}
            pick = max(train_score, key=train_score.get)
            chosen["selected"].append(pick)
            for i in test:
                need = needs[i]
                for name, w in fitted.items():
                    held.setdefault(name, {}).setdefault(need.id, []).append(
                        _ndcg10(need.grades, need.features[kind] @ w))
                signed = need.features[kind] @ fitted[SHIPPED]
                signed[need.duplicates[kind]] -= signed.max() - signed.min() + 1.0
                held.setdefault(f"{SHIPPED} + near duplicates of rejected down", {}).setdefault(need.id, []).append(
                    _ndcg10(need.grades, signed))
                held.setdefault("selected", {}).setdefault(need.id, []).append(
                    _ndcg10(need.grades, need.features[kind] @ fitted[pick]))
    return {m: {q: float(np.mean(v)) for q, v in per.items()} for m, per in held.items()}, chosen


def _runs(needs: Sequence[Need], score: Callable[[Need], np.ndarray]) -> dict[str, dict[str, float]]:
    return {n.id: {d: float(s) for d, s in zip(n.ids, score(n))} for n in needs}


def _exact(needs: Sequence[Need], run: dict) -> dict[str, float]:
    """Per-need nDCG@10 by the project's metrics (ranx) for a fixed run."""
    qrels = {n.id: dict(zip(n.ids, (int(g) for g in n.grades))) for n in needs}
    qids, scores = per_query_scores(qrels, run, 2, ["ndcg@10"])
    return dict(zip(qids, scores["ndcg@10"].tolist()))


def _paired(base: dict[str, float], other: dict[str, float]) -> dict[str, float]:
    qids = sorted(base)
    a, b = np.array([base[q] for q in qids]), np.array([other[q] for q in qids])
    diff = b - a
    t = stats.ttest_rel(b, a) if diff.any() else None
    w = stats.wilcoxon(b, a) if np.count_nonzero(diff) else None
    return {"ndcg@10": round(float(b.mean()), 4), "change_%": round(100 * float(diff.mean() / a.mean()), 2),
            "p_t": round(float(t.pvalue), 4) if t is not None else 1.0,
            "p_wilcoxon": round(float(w.pvalue), 4) if w is not None else 1.0,
            "better": int((diff > 1e-12).sum()), "worse": int((diff < -1e-12).sum())}


def latency(data: Path, count: int = 60) -> dict[str, float]:
    """What the service path costs: ``Engine.results_with_feedback`` (k = 10, three judgements: the first shown
    result rejected, the third and fifth accepted) against the plain ``results_for``, one need at a time."""
    from recommender.engine import Engine

    results, _ = load_records(data / "results.jsonl", "result")
    needs, _ = load_records(data / "needs.dev.jsonl", "need")
    engine = Engine.build(results)
    plain, judged = [], []
    for need in needs[:count]:
        start = time.perf_counter()
        shown = engine.results_for([need], 10)[0]
        plain.append(time.perf_counter() - start)
        judgements = {shown[0].id: "irrelevant", shown[2].id: "relevant", shown[4].id: "relevant"}
        start = time.perf_counter()
        engine.results_with_feedback(need, judgements, 10)
        judged.append(time.perf_counter() - start)
    ms = lambda values, q: round(1000 * float(np.percentile(values, q)), 1)  # noqa: E731
    return {"needs": len(plain), "plain_p50_ms": ms(plain, 50), "plain_p95_ms": ms(plain, 95),
            "feedback_p50_ms": ms(judged, 50), "feedback_p95_ms": ms(judged, 95)}


def main(
    data: Annotated[Path, typer.Option(help="bdci2019 folder")] = DATA,
    seeds: Annotated[int, typer.Option(min=1, help="reshuffles of the need folds")] = 5,
    folds: Annotated[int, typer.Option(min=2, help="folds over needs")] = 5,
    reveal: Annotated[int, typer.Option(min=1, help="results of the default order whose grades are revealed")] = 5,
    json_out: Annotated[Path | None, typer.Option("--json", help="write every figure here as JSON")] = None,
) -> None:
    """Residual nDCG@10 with feedback on the top ``reveal`` against the same residual without, paired by need."""
    if not (data / "qrels.dev.txt").is_file():
        raise typer.BadParameter(f"{data} has no qrels.dev.txt (the shared bdci2019 data)")
    started = time.perf_counter()
    needs, extra, timings = prepare(data, reveal)
    evaluable = set(_exact(needs, _runs(needs, lambda n: -np.arange(len(n.ids), dtype=float))))
    needs = [n for n in needs if n.id in evaluable]  # a grade >= 2 is left after the revealed results
    full_qrels, full_run = extra["full"]
    full = per_query_scores(full_qrels, full_run, 2, ["ndcg@10"])[1]["ndcg@10"].mean()
    base = _exact(needs, _runs(needs, lambda n: -np.arange(len(n.ids), dtype=float)))
    report: dict = {"needs": len(needs), "reveal": reveal, "seeds": seeds, "folds": folds,
                    "full_pool_ndcg@10": round(float(full), 4), "residual_baseline_ndcg@10":
                    round(float(np.mean(list(base.values()))), 4), "methods": {}}
    for kind in ("graded", "binary"):
        methods: dict[str, dict] = {}
        for space in ("char", "dense"):
            fixed = _exact(needs, _runs(needs, lambda n, s=space, k=kind: n.rocchio[k][s]))
            methods[f"Rocchio on {space} (0.75 / 0.15, re-fused)"] = _paired(base, fixed)
        held, chosen = _cross_validate(needs, kind, seeds, folds)
        for name, per_need in held.items():
            methods[f"{name} (CV)"] = _paired(base, per_need)
        picks = chosen["selected"]
        methods["selected (CV)"]["picked"] = {p: picks.count(p) for p in dict.fromkeys(picks)}
        methods[f"{SHIPPED} + near duplicates of rejected down (CV)"]["near_duplicate_rows"] = int(
            sum(n.duplicates[kind].sum() for n in needs))
        for name in FAMILIES:
            everything = fit_weights(needs, kind, FAMILIES[name], signed=name in SIGNED)
            methods[f"{name} (CV)"]["weights_on_all_dev"] = {f: round(float(v), 3)
                                                             for f, v in zip(FEATURES, everything) if v}
        report["methods"][kind] = methods
    report["latency"] = latency(data)
    timings["total_seconds"] = round(time.perf_counter() - started, 1)
    report |= timings
    report["machine"] = {"cores": os.cpu_count(), "python": platform.python_version(),
                         "load": [round(v, 2) for v in os.getloadavg()]}
    text = json.dumps(report, ensure_ascii=False, indent=1)
    typer.echo(text)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
