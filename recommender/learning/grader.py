"""The grader: a calibrated probability for each relevance level of a (need, result) pair, and a grade.

Levels are ordinal (none < weak < fairly strong < strong), so the model is ordinal too: one LightGBM binary
model per threshold estimates P(grade >= level), each calibrated by isotonic regression fitted on
out-of-fold predictions (stored as two JSON arrays, applied with ``np.interp``). The per-level
probabilities are differences of the (monotone) cumulative ones. The grade shown is the median of that
distribution, which minimises the expected absolute error the contest scored (1 / (1 + MAE)).

With a cross-encoder (``techmatch train --cross-encoder``) the threshold models also read its three
probabilities (out of fold when trained), and the artefact keeps a ``plain`` grader beside it, trained on the
same pairs without them: the service grades with the plain one unless told otherwise, because the
cross-encoder costs tens of milliseconds a pair on a CPU (eval/benchmarks/CROSS_ENCODER.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from recommender.hybrid import HybridIndex, Match
from recommender.learning.artefact import ArtefactError, load_artefact_with_blobs, save_artefact
from recommender.learning.cross_encoder import load_from_artefact, store_in_artefact
from recommender.learning.features import FEATURE_VERSION, PairFeaturizer
from recommender.records import Record
from recommender.signal import Hits

if TYPE_CHECKING:
    from recommender.learning.cross_encoder import CrossEncoder

GRADER_KIND = "techmatch-grader"


class Grader:
    """Per-level probabilities and grades for pairs, from threshold models over pair features."""

    def __init__(
        self, levels: Sequence[int], boosters: Sequence[lgb.Booster], calibration: Sequence[dict[str, list[float]]],
        feature_names: Sequence[str], signals: Sequence[str], depth: int, info: dict[str, Any] | None = None,
        cross_encoder: CrossEncoder | None = None, plain: Grader | None = None,
    ) -> None:
        if len(boosters) != len(levels) - 1 or len(calibration) != len(boosters):
            raise ValueError("a grader needs one model and one calibration per threshold (levels - 1)")
        self.levels = [int(v) for v in levels]
        self.boosters = list(boosters)
        self.calibration = list(calibration)
        self.feature_names = list(feature_names)
        self.signals = list(signals)
        self.depth = int(depth)
        self.info = dict(info or {})
        self._featurizer: PairFeaturizer | None = None
        if (cross_encoder is None) != (plain is None):
            raise ValueError("a grader with a cross-encoder keeps a plain grader beside it, and only then")
        self.cross_encoder = cross_encoder
        self.plain = plain
        self.use_cross_encoder = cross_encoder is not None  # False: grade with ``plain`` (the service's default)

    @property
    def base_feature_names(self) -> list[str]:
        """The pair features' names (without the cross-encoder's columns)."""
        extra = len(self.cross_encoder.names) if self.cross_encoder is not None else 0
        return self.feature_names[: len(self.feature_names) - extra]

    # -- prediction ---------------------------------------------------------------------------
    def featurizer(self, index: HybridIndex) -> PairFeaturizer:
        """Features from this index, refusing an index whose signals differ from the training index's."""
        if self._featurizer is None or self._featurizer.index is not index:
            featurizer = PairFeaturizer(index, self.depth)
            if featurizer.names != self.base_feature_names:
                raise ArtefactError(
                    f"the grader was trained on an index with signals {self.signals}, this index has "
                    f"{list(index.signals)}; retrain it with 'techmatch train'"
                )
            self._featurizer = featurizer
        return self._featurizer

    def cumulative_from_features(self, features: np.ndarray) -> np.ndarray:
        """Calibrated P(grade >= level) for each threshold level, made non-increasing across levels."""
        columns = []
        for booster, calib in zip(self.boosters, self.calibration):
            raw = booster.predict(features, num_threads=1)
            columns.append(np.interp(raw, calib["x"], calib["y"]) if calib["x"] else raw)
        cumulative = np.column_stack(columns) if columns else np.zeros((len(features), 0))
        return np.minimum.accumulate(np.clip(cumulative, 0.0, 1.0), axis=1)

    def proba_from_features(self, features: np.ndarray) -> np.ndarray:
        """P(grade == level) per row, shape (n, len(levels)); rows sum to 1."""
        cumulative = self.cumulative_from_features(np.asarray(features, dtype=np.float64))
        n = len(cumulative)
        upper = np.column_stack([np.ones(n), cumulative])
        lower = np.column_stack([cumulative, np.zeros(n)])
        return upper - lower

    def grade_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """The median level of each row's distribution (minimises expected absolute error)."""
        cumulative_from_top = np.cumsum(proba, axis=1)
        index = (cumulative_from_top >= 0.5).argmax(axis=1)
        return np.asarray(self.levels, dtype=int)[index]

    def predict_proba(
        self, index: HybridIndex, queries: Sequence[Record], result_ids: Sequence[str],
        known_hits: Mapping[str, Hits] | None = None,
    ) -> np.ndarray:
        """Probability of each level for the aligned pairs (queries[i], result_ids[i]); ``known_hits``: the
        signals' candidate lists for the query when all pairs share one (saves searching again)."""
        if not len(queries):
            return np.zeros((0, len(self.levels)))
        if self.plain is not None and not self.use_cross_encoder:
            return self.plain.predict_proba(index, queries, result_ids, known_hits)
        return self.proba_from_features(self.features(index, queries, result_ids, known_hits))

    def features(
        self, index: HybridIndex, queries: Sequence[Record], result_ids: Sequence[str],
        known_hits: Mapping[str, Hits] | None = None,
    ) -> np.ndarray:
        """The model's input for the aligned pairs: pair features, then the cross-encoder's, if it has one."""
        base = self.featurizer(index).transform(queries, result_ids, known_hits)
        if self.cross_encoder is None:
            return base
        results = [index.records[r] for r in result_ids]
        return np.hstack([base, self.cross_encoder.cumulative(queries, results, progress=len(queries) > 2000)])

    def predict_grade(self, index: HybridIndex, queries: Sequence[Record], result_ids: Sequence[str]) -> np.ndarray:
        """Integer grade (on the training judgements' scale) for each aligned pair."""
        return self.grade_from_proba(self.predict_proba(index, queries, result_ids))

    def expected_grade(self, index: HybridIndex, queries: Sequence[Record], result_ids: Sequence[str]) -> np.ndarray:
        """Mean of each pair's grade distribution: a smooth score for ranking and shortlists."""
        return self.predict_proba(index, queries, result_ids) @ np.asarray(self.levels, dtype=np.float64)

    def annotate(
        self, matcher: Any, query_id: str, matches: list[Match], kind: str, query: Record | None = None,
        known_hits: Mapping[str, Hits] | None = None,
    ) -> None:
        """Fill ``grade`` and ``grade_probability`` (the probability of that grade) of each match.

        kind 'result': matches are results for the need ``query`` (or, if not given, the indexed need
        ``query_id``), and ``known_hits`` may carry the signals' candidate lists the search already found;
        kind 'need': matches are needs for the result ``query_id``, each need the query.
        """
        if not matches:
            return
        if kind == "result":
            if query is None:
                query = matcher.need_record(query_id)  # UnknownIdError if it is not an indexed need
            queries, result_ids = [query] * len(matches), [m.id for m in matches]
        else:
            queries, result_ids = [m.record for m in matches], [query_id] * len(matches)
            known_hits = None  # those lists rank needs, not results
        proba = self.predict_proba(matcher.results, queries, result_ids, known_hits)
        grades = self.grade_from_proba(proba)
        for m, row, grade in zip(matches, proba, grades):
            m.grade = int(grade)
            m.grade_probability = float(row[self.levels.index(int(grade))])

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the grader as a checksummed artefact (LightGBM text models + JSON)."""
        info = {
            "levels": self.levels, "feature_names": self.feature_names, "signals": self.signals, "depth": self.depth,
            "feature_version": FEATURE_VERSION, "calibration": self.calibration, **self.info,
        }
        models = {f"ge{level}": b.model_to_string() for level, b in zip(self.levels[1:], self.boosters)}
        blobs = {}
        if self.cross_encoder is not None and self.plain is not None:
            store_in_artefact(self.cross_encoder, info, blobs)
            info["plain_calibration"] = self.plain.calibration
            models |= {f"plain_ge{level}": b.model_to_string()
                       for level, b in zip(self.levels[1:], self.plain.boosters)}
        return save_artefact(folder, GRADER_KIND, info, models, blobs)

    @classmethod
    def load(cls, folder: str | Path) -> Grader:
        """Load a saved grader; ``ArtefactError`` (an ``IndexLoadError``) if damaged or of another version."""
        info, models, blobs = load_artefact_with_blobs(folder, GRADER_KIND)
        if info.get("feature_version") != FEATURE_VERSION:
            raise ArtefactError(f"{folder}: grader uses feature version {info.get('feature_version')}, this "
                                f"techmatch computes version {FEATURE_VERSION}; retrain it with 'techmatch train'")
        levels = info.pop("levels")
        boosters = [lgb.Booster(model_str=models[f"ge{level}"]) for level in levels[1:]]
        names, signals, depth = info.pop("feature_names"), info.pop("signals"), info.pop("depth")
        calibration = info.pop("calibration")
        plain = None
        plain_calibration = info.pop("plain_calibration", None)
        cross_encoder = load_from_artefact(folder, info, blobs)
        if cross_encoder is not None:
            if plain_calibration is None:
                raise ArtefactError(f"{folder}: grader holds a cross-encoder but not the plain grader beside it")
            plain_boosters = [lgb.Booster(model_str=models[f"plain_ge{level}"]) for level in levels[1:]]
            plain = cls(levels, plain_boosters, plain_calibration, names[: len(names) - len(cross_encoder.names)],
                        signals, depth)
        return cls(levels, boosters, calibration, names, signals, depth,
                   {k: v for k, v in info.items() if k != "feature_version"}, cross_encoder, plain)

