"""A review pool's features from records: the one-shot triage's score, the market's per-need strengths, text.

The one-shot score is exactly ``techmatch shortlist``'s transferability (market pull from the needs over the
whole results index, readiness from the fields), so a loop with no decision reads in the shortlist's order.
Without needs the prior is readiness alone (the part of the shortlist that needs no market).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recommender.records import Record
from recommender.review.features import ReviewFeatures, build_features
from recommender.triage.market import MarketPull
from recommender.triage.readiness import readiness
from recommender.triage.shortlist import score_results


def pool_features(
    pool: Sequence[str], results: Mapping[str, Record], market: MarketPull | None = None,
    context: Mapping[str, str] | None = None, use_context: bool = True,
) -> ReviewFeatures:
    """Features of the ``pool`` results; ``market``: the needs' pull over the results (None: no needs)."""
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
    return build_features(list(pool), [records[rid].text for rid in pool], prior=prior, strengths=strengths,
                          context=dict(context or {}) if use_context else None, extra=extra)


def market_for(results: Sequence[Record], needs: Sequence[Record], progress: bool = False) -> MarketPull:
    """The market pull of ``needs`` over an index of ``results`` built with the shipped pipeline."""
    from recommender.pipeline import new_index
    from recommender.triage.market import market_pull

    index = new_index("result")
    index.build(list(results))
    return market_pull(index, list(needs), progress=progress)
