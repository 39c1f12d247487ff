"""Reciprocal rank fusion: the hybrid of signals whose scores live on different scales.

RRF (Cormack et al., 2009) needs no score calibration, which is why it is the default way to combine a
dense cosine with BM25 and TF-IDF; each signal's weight multiplies its 1 / (k + rank) contribution.
"""

from __future__ import annotations

from collections.abc import Mapping

from recommender.signal import Hits

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Mapping[str, Hits], weights: Mapping[str, float] | None = None, k: int = RRF_K
) -> list[tuple[str, float]]:
    """Fuse ranked lists into one; ties broken by document id so the order is deterministic."""
    fused: dict[str, float] = {}
    for name, hits in rankings.items():
        weight = 1.0 if weights is None else float(weights.get(name, 1.0))
        if weight == 0:
            continue
        for rank, (doc_id, _score) in enumerate(hits, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
