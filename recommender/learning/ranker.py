"""A learned re-ranker: LambdaRank over pair features, re-ordering the hybrid's deep candidate list.

The hybrid's fused list finds relevant results (recall at a few hundred) better than it orders them; a
ranker trained on judgements sees every signal's score and rank together with the text features and
re-orders the top ``candidates`` (default 300, deeper than the 100 the contract scores). Its order is
fused with the hybrid's own (reciprocal ranks, ``blend_weight`` for the model); training picks that
weight by cross-validation on the training needs and sets it to 0 (the hybrid order, unchanged) when the
model does not help, so learning never makes the ranking worse on the judgements it had.

With a cross-encoder (``techmatch eval --cross-encoder``) its probabilities are three more features for the
top ``cross_encoder_candidates`` of each list (missing below them: LightGBM's missing-value branch), which
bounds its cost to tens of pairs a need.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
from tqdm.auto import tqdm

from recommender.hybrid import HybridIndex
from recommender.learning.artefact import ArtefactError, load_artefact_with_blobs, save_artefact
from recommender.learning.cross_encoder import load_from_artefact, store_in_artefact
from recommender.learning.features import FEATURE_VERSION, PairFeaturizer
from recommender.records import Record

if TYPE_CHECKING:
    from recommender.learning.cross_encoder import CrossEncoder

RANKER_KIND = "techmatch-ranker"
CROSS_ENCODER_CANDIDATES = 30  # candidates per need the cross-encoder reads (the top of the hybrid list)
RERANK_CANDIDATES = 300
BLEND_RRF_K = 60


def blend_scores(model_scores: np.ndarray, blend_weight: float, rrf_k: int = BLEND_RRF_K) -> np.ndarray:
    """Fuse the hybrid order (the rows' order) with the model's order by weighted reciprocal ranks."""
    n = len(model_scores)
    hybrid_rank = np.arange(1, n + 1, dtype=np.float64)
    model_rank = np.empty(n, dtype=np.float64)
    model_rank[np.argsort(-np.asarray(model_scores), kind="stable")] = hybrid_rank
    return 1.0 / (rrf_k + hybrid_rank) + blend_weight / (rrf_k + model_rank)


class Reranker:
    """Scores (need, result) pairs with a LambdaRank model; re-ranks the hybrid's top candidates."""

    def __init__(
        self, booster: lgb.Booster, feature_names: Sequence[str], signals: Sequence[str], depth: int,
        candidates: int = RERANK_CANDIDATES, blend_weight: float = 1.0, info: dict[str, Any] | None = None,
        cross_encoder: CrossEncoder | None = None, cross_encoder_candidates: int = CROSS_ENCODER_CANDIDATES,
    ) -> None:
        self.booster = booster
        self.feature_names = list(feature_names)
        self.signals = list(signals)
        self.depth = int(depth)
        self.candidates = int(candidates)
        self.blend_weight = float(blend_weight)
        self.info = dict(info or {})
        self.cross_encoder = cross_encoder
        self.cross_encoder_candidates = int(cross_encoder_candidates)

    def featurizer(self, index: HybridIndex) -> PairFeaturizer:
        featurizer = PairFeaturizer(index, self.depth)
        extra = len(self.cross_encoder.names) if self.cross_encoder is not None else 0
        if featurizer.names != self.feature_names[: len(self.feature_names) - extra]:
            raise ArtefactError(f"the ranker was trained with signals {self.signals}, this index has "
                                f"{list(index.signals)}; retrain it")
        return featurizer

    def score_features(self, features: np.ndarray) -> np.ndarray:
        return self.booster.predict(np.asarray(features, dtype=np.float64), num_threads=1)

    def rerank(self, index: HybridIndex, needs: Sequence[Record], progress: bool = True) -> dict[str, dict[str, float]]:
        """A run (need id -> result id -> learned score) over each need's top ``candidates`` hybrid matches."""
        featurizer = self.featurizer(index)
        run: dict[str, dict[str, float]] = {}
        for need in tqdm(needs, desc="re-ranking", unit="need", disable=not progress or len(needs) < 20):
            ids = [m.id for m in index.search([need.as_query()], self.candidates, explain=False)[0]]
            if not ids:
                run[need.id] = {}
                continue
            if self.blend_weight:
                features = featurizer.transform([need] * len(ids), ids)
                if self.cross_encoder is not None:
                    results = [index.records[r] for r in ids]
                    features = with_cross_encoder_columns(features, self.cross_encoder, need, results,
                                                          self.cross_encoder_candidates)
                model = self.score_features(features)
            else:
                model = np.zeros(len(ids))
            scores = blend_scores(model, self.blend_weight)
            run[need.id] = {d: float(s) for d, s in zip(ids, scores)}
        return run

    def rerank_run(
        self, index: HybridIndex, needs: list[Record], run: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        """Replace each need's ranking with the learned one over its own (deeper) candidate list."""
        reranked = self.rerank(index, needs)
        return {**run, **reranked}

    def save(self, folder: str | Path) -> Path:
        info = {
            "feature_names": self.feature_names, "signals": self.signals, "depth": self.depth,
            "candidates": self.candidates, "blend_weight": self.blend_weight, "feature_version": FEATURE_VERSION,
            **self.info,
        }
        blobs = {}
        if self.cross_encoder is not None:
            store_in_artefact(self.cross_encoder, info, blobs)
            info["cross_encoder_candidates"] = self.cross_encoder_candidates
        return save_artefact(folder, RANKER_KIND, info, {"ranker": self.booster.model_to_string()}, blobs)

    @classmethod
    def load(cls, folder: str | Path) -> Reranker:
        info, models, blobs = load_artefact_with_blobs(folder, RANKER_KIND)
        if info.get("feature_version") != FEATURE_VERSION:
            raise ArtefactError(f"{folder}: ranker uses feature version {info.get('feature_version')}; retrain it")
        booster = lgb.Booster(model_str=models["ranker"])
        names, signals, depth = info.pop("feature_names"), info.pop("signals"), info.pop("depth")
        candidates, weight = info.pop("candidates"), info.pop("blend_weight")
        top = info.pop("cross_encoder_candidates", CROSS_ENCODER_CANDIDATES)
        cross_encoder = load_from_artefact(folder, info, blobs)
        return cls(booster, names, signals, depth, candidates, weight,
                   {k: v for k, v in info.items() if k != "feature_version"}, cross_encoder, top)


def with_cross_encoder_columns(
    features: np.ndarray, cross_encoder: CrossEncoder, need: Record, results: Sequence[Record], top: int,
) -> np.ndarray:
    """One need's candidate features (hybrid order) with the cross-encoder's columns for the first ``top``."""
    columns = np.full((len(results), len(cross_encoder.names)), np.nan)
    n = min(top, len(results))
    if n:
        columns[:n] = cross_encoder.cumulative([need] * n, list(results[:n]))
    return np.hstack([features, columns])
