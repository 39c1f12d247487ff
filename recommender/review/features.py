"""What a result looks like to the review model: its text, its one-shot score, and the needs that want it.

Why these: character n-gram TF-IDF reads Chinese without a segmenter (titles are short, words unknown); the
one-shot transferability score is the best guess before any decision, so it enters as a feature strong
enough to lead the first refits (scaled by ``prior_weight``, which the regulariser leaves largely alone);
the market's per-need strengths (one column a need) carry *which* need a result answers, so a decision on
one result of a need moves that need's other results; an optional context column (the need a result is
being judged against, e.g. bdci2019's one judged need) adds the need as a one-hot and the result's rank
within that need's results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

PRIOR_WEIGHT = 4.0  # the one-shot score's column scale: large, so few decisions cannot overturn it by chance
NEED_WEIGHT = 1.0  # the per-need strength columns
CONTEXT_WEIGHT = 1.0  # the judged-need one-hot and rank columns
WORDS = True  # jieba word n-grams beside the character n-grams


@dataclass
class ReviewFeatures:
    """One row a result of the pool, in pool order; ``names`` says which block a column belongs to."""

    ids: list[str]
    matrix: sp.csr_matrix
    prior: np.ndarray  # the one-shot score per row (0 where none): the order before any decision
    blocks: dict[str, tuple[int, int]] = field(default_factory=dict)  # block name -> its columns [start, end)

    def index(self) -> dict[str, int]:
        return {rid: i for i, rid in enumerate(self.ids)}


def _minmax(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min()) if len(values) else 0.0
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def text_block(texts: Sequence[str], max_features: int = 200_000) -> sp.csr_matrix:
    """Character 1-3-gram TF-IDF, sublinear, l2-normalised rows."""
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2,
                                 max_features=max_features, dtype=np.float32)
    try:
        return vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # every n-gram occurs once (a tiny pool): keep them all
        vectorizer.set_params(min_df=1)
        return vectorizer.fit_transform(texts).tocsr()


def word_block(texts: Sequence[str], max_features: int = 200_000) -> sp.csr_matrix:
    """Word 1-2-gram TF-IDF over jieba's segmentation (ASReview's default features, on segmented Chinese):
    words and word pairs carry the topic where character n-grams spread it over many short, shared pieces."""
    import jieba

    jieba.setLogLevel(60)
    segmented = [" ".join(w for w in jieba.lcut(t) if w.strip()) for t in texts]
    vectorizer = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\S+", ngram_range=(1, 2), sublinear_tf=True,
                                 min_df=1, max_df=0.95, max_features=max_features, dtype=np.float32)
    try:
        return vectorizer.fit_transform(segmented).tocsr()
    except ValueError:  # no word at all (empty texts)
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)


def need_block(ids: Sequence[str], strengths: Mapping[str, Mapping[str, float]]) -> sp.csr_matrix:
    """Per result, the strength with which each need wants it (``strengths[result_id][need_id]``)."""
    needs = sorted({n for per in strengths.values() for n in per})
    column = {n: j for j, n in enumerate(needs)}
    rows, cols, vals = [], [], []
    for i, rid in enumerate(ids):
        for nid, value in strengths.get(rid, {}).items():
            rows.append(i)
            cols.append(column[nid])
            vals.append(float(value))
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(ids), max(len(needs), 1)), dtype=np.float32)


def context_block(ids: Sequence[str], context: Mapping[str, str], prior: np.ndarray,
                  similarity: Mapping[str, Mapping[str, float]] | None = None) -> sp.csr_matrix:
    """The need each result is judged against: a one-hot of it, and, for the prior and each similarity signal
    (``similarity[result_id][signal]``: the result against its need), 1 / rank among that need's results and
    the score relative to that need's best. Relevance there is per need: a result is strong *for its need*."""
    groups = sorted({context[r] for r in ids if r in context})
    column = {g: j for j, g in enumerate(groups)}
    members: dict[str, list[int]] = {}
    for i, rid in enumerate(ids):
        if rid in context:
            members.setdefault(context[rid], []).append(i)
    signals = sorted({name for per in (similarity or {}).values() for name in per})
    values = np.vstack([prior] + [np.asarray([float((similarity or {}).get(r, {}).get(name, 0.0)) for r in ids])
                                  for name in signals]).astype(np.float32)
    dense = np.zeros((len(ids), 2 * len(values)), dtype=np.float32)
    for rows in members.values():
        rows_a = np.asarray(rows)
        for k, v in enumerate(values):
            group = v[rows_a]
            order = np.argsort(-group, kind="stable")
            rank = np.empty(len(rows_a))
            rank[order] = np.arange(1, len(rows_a) + 1)
            dense[rows_a, 2 * k] = 1.0 / rank
            top, low = float(group.max()), float(group.min())
            dense[rows_a, 2 * k + 1] = (group - low) / (top - low) if top > low else 0.0
    rows = [i for i, rid in enumerate(ids) if rid in context]
    onehot = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, [column[context[ids[i]]] for i in rows])),
                           shape=(len(ids), max(len(groups), 1)))
    return sp.hstack([onehot, sp.csr_matrix(dense)], format="csr")


def build_features(
    ids: Sequence[str], texts: Sequence[str], prior: Mapping[str, float] | None = None,
    strengths: Mapping[str, Mapping[str, float]] | None = None, context: Mapping[str, str] | None = None,
    extra: Mapping[str, Sequence[float]] | None = None, prior_weight: float = PRIOR_WEIGHT,
    similarity: Mapping[str, Mapping[str, float]] | None = None, words: bool = WORDS,
) -> ReviewFeatures:
    """The pool's feature matrix. ``prior``: the one-shot score per result; ``strengths``: per result, the
    needs that want it and how strongly; ``context``: per result, the need it is judged against; ``extra``:
    named dense columns (readiness, market pull, ...), min-max scaled; ``similarity``: per result, each
    signal's score against its context need; ``words``: add jieba word 1-2-gram TF-IDF beside the characters."""
    ids = list(ids)
    score = np.asarray([float((prior or {}).get(rid, 0.0)) for rid in ids], dtype=np.float32)
    named: list[tuple[str, sp.csr_matrix]] = [("chars", text_block(texts))]
    if words:
        named.append(("words", word_block(texts)))
    named.append(("prior", sp.csr_matrix(prior_weight * _minmax(score)[:, None])))
    if strengths:
        named.append(("needs", NEED_WEIGHT * need_block(ids, strengths)))
    if context:
        named.append(("context", CONTEXT_WEIGHT * context_block(ids, context, score, similarity)))
    for name, values in (extra or {}).items():
        named.append((f"extra:{name}", sp.csr_matrix(_minmax(np.asarray(values, dtype=np.float32))[:, None])))
    blocks, at = {}, 0
    for name, block in named:
        blocks[name] = (at, at + block.shape[1])
        at += block.shape[1]
    return ReviewFeatures(ids, sp.hstack([b for _, b in named], format="csr"), score, blocks)
