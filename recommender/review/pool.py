"""A review pool's features from records: the one-shot triage's score, the market's per-need strengths, text.

The one-shot score is exactly ``techmatch shortlist``'s transferability (market pull from the needs over the
whole results index, readiness from the fields), so a loop with no decision reads in the shortlist's order.
Without needs the prior is readiness alone (the part of the shortlist that needs no market).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recommender.hybrid import HybridIndex
from recommender.records import Record
from recommender.review.features import PRIOR_WEIGHT, WORDS, ReviewFeatures, build_features
from recommender.triage.market import MarketPull
from recommender.triage.readiness import readiness
from recommender.triage.shortlist import score_results


def pool_features(
    pool: Sequence[str], results: Mapping[str, Record], market: MarketPull | None = None,
    context: Mapping[str, str] | None = None, use_context: bool = True, index: HybridIndex | None = None,
    prior_weight: float = PRIOR_WEIGHT, words: bool = WORDS,
) -> ReviewFeatures:
    """Features of the ``pool`` results; ``market``: the needs' pull over the results (None: no needs);
    ``context``: the need each result is judged against, whose similarity to it ``index`` measures."""
    records = {rid: results[rid] for rid in pool}
    if market is not None:
        scored = {s.result_id: s for s in score_results(records, market)}
        prior = {rid: scored[rid].score for rid in pool}
        pull = [scored[rid].pull for rid in pool]
        strengths = {rid: {c.need_id: c.strength for c in market.wanted_by.get(rid, [])} for rid in pool}
    else:
        prior = {rid: readiness(records[rid]) for rid in pool}
        pull = [0.0] * len(pool)
        strengths = {}
    extra = {"readiness": [readiness(records[rid]) for rid in pool], "market_pull": pull}
    context = dict(context or {}) if use_context else {}
    similarity = None
    if context and index is not None and market is not None:
        similarity = context_similarity(index, market.needs, {r: n for r, n in context.items() if n in market.needs})
    return build_features(list(pool), [records[rid].text for rid in pool], prior=prior, strengths=strengths,
                          context=context or None, extra=extra, similarity=similarity, prior_weight=prior_weight,
                          words=words)


def context_similarity(index: HybridIndex, needs: Mapping[str, Record],
                       context: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Each result's score against its context need, by every signal of the index (dense, bm25, char, ...)."""
    groups: dict[str, list[str]] = {}
    for rid, nid in context.items():
        if rid in index.records:
            groups.setdefault(nid, []).append(rid)
    need_ids = sorted(groups)
    queries = [needs[n].as_query() for n in need_ids]
    out: dict[str, dict[str, float]] = {}
    for name, signal in index.signals.items():
        scores = signal.score(queries, [groups[n] for n in need_ids])
        for nid, values in zip(need_ids, scores):
            for rid, value in zip(groups[nid], values):
                out.setdefault(rid, {})[name] = float(value)
    return out


def market_for(results: Sequence[Record], needs: Sequence[Record],
               progress: bool = False) -> tuple[MarketPull, HybridIndex]:
    """The market pull of ``needs`` over an index of ``results`` built with the shipped pipeline (and the index)."""
    from recommender.pipeline import new_index
    from recommender.triage.market import market_pull

    index = new_index("result")
    index.build(list(results))
    return market_pull(index, list(needs), progress=progress), index
