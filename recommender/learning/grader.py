"""The grader: a calibrated probability for each relevance level of a (need, result) pair, and a grade.

Levels are ordinal (none < weak < fairly strong < strong), so the model is ordinal too: one LightGBM binary
model per threshold estimates P(grade >= level), each calibrated by isotonic regression fitted on
out-of-fold predictions (stored as two JSON arrays, applied with ``np.interp``). The per-level
probabilities are differences of the (monotone) cumulative ones. The grade shown is the median of that
distribution, which minimises the expected absolute error the contest scored (1 / (1 + MAE)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from recommender.hybrid import HybridIndex, Match
from recommender.learning.artefact import ArtefactError, load_artefact, save_artefact
from recommender.learning.features import FEATURE_VERSION, PairFeaturizer
from recommender.records import Record
from recommender.signal import Hits

GRADER_KIND = "techmatch-grader"


class Grader:
    """Per-level probabilities and grades for pairs, from threshold models over pair features."""

    def __init__(
        self, levels: Sequence[int], boosters: Sequence[lgb.Booster], calibration: Sequence[dict[str, list[float]]],
        feature_names: Sequence[str], signals: Sequence[str], depth: int, info: dict[str, Any] | None = None,
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

    # -- prediction ---------------------------------------------------------------------------
    def featurizer(self, index: HybridIndex) -> PairFeaturizer:
        """Features from this index, refusing an index whose signals differ from the training index's."""
        if self._featurizer is None or self._featurizer.index is not index:
            featurizer = PairFeaturizer(index, self.depth)
            if featurizer.names != self.feature_names:
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
        return self.proba_from_features(self.featurizer(index).transform(queries, result_ids, known_hits))

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
        return save_artefact(folder, GRADER_KIND, info, models)

    @classmethod
    def load(cls, folder: str | Path) -> Grader:
        """Load a saved grader; ``ArtefactError`` (an ``IndexLoadError``) if damaged or of another version."""
        info, models = load_artefact(folder, GRADER_KIND)
        if info.get("feature_version") != FEATURE_VERSION:
            raise ArtefactError(f"{folder}: grader uses feature version {info.get('feature_version')}, this "
                                f"techmatch computes version {FEATURE_VERSION}; retrain it with 'techmatch train'")
        levels = info.pop("levels")
        boosters = [lgb.Booster(model_str=models[f"ge{level}"]) for level in levels[1:]]
        return cls(
            levels, boosters, info.pop("calibration"), info.pop("feature_names"), info.pop("signals"),
            info.pop("depth"), {k: v for k, v in info.items() if k != "feature_version"},
        )

