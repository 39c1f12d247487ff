"""Relevance feedback on one need's list: judgements of shown results re-rank the rest at once.

A broker (or the enterprise) marks a few shown results 相关 / 不相关 / 感兴趣. Each judged result says which
way its neighbours should move: the candidates are scored by their base rank plus their similarity to the
accepted results minus their similarity to the rejected ones, in two spaces (e5 vectors and character
n-gram TF-IDF, mean and nearest judged result: the nearest catches duplicates), and by per-need weights of
the signals' own scores, fitted on the judged results and shrunk towards the global ones. The weights of
the features were chosen by cross-validation over bdci2019 dev needs
(``eval/benchmarks/relevance_feedback.py``, ``eval/benchmarks/RELEVANCE_FEEDBACK.md``); nothing is trained
online, so a re-rank costs a few matrix products.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recommender.hybrid import HybridIndex
from recommender.signal import TextsLike, as_texts

# What a judgement says, on the -1 (rejected) .. +1 (accepted) scale the features are weighted by.
JUDGEMENT_WEIGHTS: dict[str, float] = {"relevant": 1.0, "interested": 1.0, "irrelevant": -1.0}
GRADE_WEIGHTS: dict[int, float] = {0: -1.0, 1: -0.5, 2: 0.5, 3: 1.0}  # graded judgements (bdci's 0-3)
SPACES = ("dense", "char")
SIMILARITY_FEATURES = tuple(f"{space}_{side}_{stat}" for space in SPACES for side in ("pos", "neg")
                            for stat in ("mean", "max"))
FEATURES = ("base",) + SIMILARITY_FEATURES + ("per_need",)


@dataclass
class FeedbackPool:
    """One need's candidates (in base order) with what feedback reads: signal scores and both spaces' vectors."""

    ids: list[str]
    signals: np.ndarray  # (n, signals) each signal's score for the pair
    dense: np.ndarray | None  # (n, dim) unit vectors, or None without a dense signal
    chars: sp.csr_matrix | None  # (n, vocabulary) unit rows, or None without a char signal
    base_rank: np.ndarray = field(default_factory=lambda: np.zeros(0))  # 1 = first in the default order

    def __post_init__(self) -> None:
        if not len(self.base_rank):
            self.base_rank = np.arange(1, len(self.ids) + 1, dtype=np.float64)


def pool_from_index(index: HybridIndex, query: TextsLike, ids: Sequence[str],
                    base_rank: Sequence[float] | None = None) -> FeedbackPool:
    """The pool of these indexed results for one need's query (``base_rank``: their default ranks)."""
    ids = list(ids)
    scores = index.score_pairs([as_texts(query)], [ids])
    signals = np.column_stack([np.asarray(scores[name][0], dtype=np.float64) for name in index.signals]) \
        if ids else np.zeros((0, len(index.signals)))
    dense = chars = None
    signal = index.signals.get("dense")
    if signal is not None and ids:
        dense = np.asarray(signal.ann.vectors(ids), dtype=np.float64)
    signal = index.signals.get("char")
    if signal is not None and ids:
        chars = signal.doc_rows(ids)
    ranks = np.asarray(base_rank, dtype=np.float64) if base_rank is not None else np.zeros(0)
    return FeedbackPool(ids, signals, dense, chars, ranks)


def _similarities(pool: FeedbackPool, space: str, judged: np.ndarray) -> np.ndarray | None:
    if space == "dense":
        if pool.dense is None:
            return None
        return pool.dense @ pool.dense[judged].T
    if pool.chars is None:
        return None
    return (pool.chars @ pool.chars[judged].T).toarray()


def _zscore(values: np.ndarray) -> np.ndarray:
    std = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)


def signal_features(pool: FeedbackPool) -> np.ndarray:
    """What the per-need weights weigh: each signal's score (z-scored within the pool) and the base order."""
    return np.column_stack([_zscore(pool.signals), -np.log(pool.base_rank)])


def per_need_scores(pool: FeedbackPool, judged: Sequence[int], weights: Sequence[float], shrink: float,
                    global_weights: np.ndarray | None = None) -> np.ndarray:
    """How much a need's own judgements change the weights of its signals: a logistic model on the judged
    results, penalised by ``shrink`` * ||w - global||^2, scored as x @ (w - global) (zero with no contrast)."""
    x = signal_features(pool)
    labels = (np.asarray(weights) > 0).astype(np.float64)
    if not len(judged) or labels.min() == labels.max():
        return np.zeros(len(pool.ids))
    start = np.zeros(x.shape[1]) if global_weights is None else np.asarray(global_weights, dtype=np.float64)
    xj = x[list(judged)]
    w, bias = start.copy(), 0.0
    for _ in range(50):  # Newton steps on a (columns + 1)-dimensional problem: microseconds
        p = 1.0 / (1.0 + np.exp(-(xj @ w + bias)))
        grad_w = xj.T @ (p - labels) + 2 * shrink * (w - start)
        grad_b = float(np.sum(p - labels))
        h = p * (1 - p)
        hess = np.zeros((len(w) + 1, len(w) + 1))
        hess[:-1, :-1] = (xj * h[:, None]).T @ xj + 2 * shrink * np.eye(len(w))
        hess[:-1, -1] = hess[-1, :-1] = xj.T @ h
        hess[-1, -1] = h.sum() + 1e-6
        step = np.linalg.solve(hess, np.append(grad_w, grad_b))
        w, bias = w - step[:-1], bias - step[-1]
        if np.abs(step).max() < 1e-6:
            break
    return x @ (w - start)


def feedback_features(pool: FeedbackPool, judged: Mapping[int, float], shrink: float = 4.0) -> np.ndarray:
    """One row per candidate, the columns of ``FEATURES``; ``judged`` maps pool rows to a weight in [-1, 1]."""
    n = len(pool.ids)
    out = np.zeros((n, len(FEATURES)))
    out[:, 0] = -np.log(pool.base_rank)
    rows = np.array(list(judged), dtype=int)
    weights = np.array([judged[r] for r in rows], dtype=np.float64)
    column = 1
    for space in SPACES:
        sims = _similarities(pool, space, rows) if len(rows) else None
        for side in (weights > 0, weights < 0):
            if sims is not None and side.any():
                part = sims[:, side] * np.abs(weights[side])
                out[:, column] = part.sum(axis=1) / np.abs(weights[side]).sum()
                out[:, column + 1] = part.max(axis=1)
            column += 2
    out[:, -1] = per_need_scores(pool, rows, weights, shrink)
    out[:, 1:] = _zscore(out[:, 1:])  # per pool: a weight means the same on a tight pool and a spread one
    return out


# Chosen by cross-validation over the 77 evaluable bdci2019 dev needs (binary judgements, the page's buttons;
# signs kept as the page promises: accepted up, rejected never up), refitted on all of them; the weight on
# similarity to rejected results came out 0 (pushing their neighbours down did not help on dev), and sinking
# a rejected result's near duplicates cost a point there (+5.3% -> +4.3%), so that is an option
# (``demote_duplicates``), off by default: a rejection moves its neighbours down only relative to accepted ones'.
# See eval/benchmarks/RELEVANCE_FEEDBACK.md.
DEFAULT_WEIGHTS: dict[str, float] = {
    "base": 1.0, "dense_pos_mean": 0.5, "dense_pos_max": 0.25, "char_pos_mean": 2.0, "char_pos_max": 0.5,
    "per_need": 1.0,
}
DUPLICATE_DENSE = 0.97  # cosines above which two results are the same result written twice
DUPLICATE_CHAR = 0.9


def duplicates_of_rejected(pool: FeedbackPool, judged: Mapping[int, float]) -> np.ndarray:
    """Which candidates are near duplicates of a rejected result (either space above its threshold)."""
    rows = np.array([r for r, w in judged.items() if w < 0], dtype=int)
    out = np.zeros(len(pool.ids), dtype=bool)
    if not len(rows):
        return out
    for space, threshold in (("dense", DUPLICATE_DENSE), ("char", DUPLICATE_CHAR)):
        sims = _similarities(pool, space, rows)
        if sims is not None:
            out |= sims.max(axis=1) >= threshold
    out[rows] = False
    return out


def weight_vector(weights: Mapping[str, float]) -> np.ndarray:
    return np.array([float(weights.get(name, 0.0)) for name in FEATURES])


def feedback_scores(pool: FeedbackPool, judged: Mapping[int, float], weights: Mapping[str, float] | None = None,
                    demote_duplicates: bool = False) -> np.ndarray:
    """The re-ranking score of every candidate of the pool (higher first) given the judged rows; with
    ``demote_duplicates``, near duplicates of a rejected result go below everything else."""
    scores = feedback_features(pool, judged) @ weight_vector(weights or DEFAULT_WEIGHTS)
    duplicates = duplicates_of_rejected(pool, judged) if demote_duplicates else np.zeros(len(scores), dtype=bool)
    if duplicates.any():
        scores[duplicates] -= scores.max() - scores.min() + 1.0  # below the rest, in their own order
    return scores
