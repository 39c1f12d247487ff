"""One campaign's model: decisions in, a refit, the whole pool re-prioritised.

Before any transferable result is known (or any non-transferable one) the order is the one-shot triage's.
Each refit follows BMI: the decided results, plus ``pseudo_negatives`` unread ones drawn at random and
labelled not transferable (in a pool where a few percent are transferable this is nearly always right, and
it keeps the first refits from overfitting to two decisions). Decided negatives beyond ``max_negatives`` are
sampled (the most recent ones are always kept), which bounds the fit at any campaign length: the refit
budget is 2 s at 30,000 results (``eval/benchmarks/review_speed.py``). What the one-shot triage knows (its
score, the needs' strengths, readiness, pull) leads the first refits; once three results of each kind are
decided its columns are weighted by how well the one-shot score tells them apart (2 AUC - 1, 0 at chance):
on a label the market does not mean (a discipline) it would otherwise keep costing reads, and where it does
mean it (the demo world) it keeps its weight. ``prior_half`` can also fade it with the transferable decisions
(measured, not the default: eval/benchmarks/REVIEW.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from recommender.review.classifier import DEFAULT_CLASSIFIER, Classifier, new_classifier
from recommender.review.features import ReviewFeatures
from recommender.review.query import max_relevance
from recommender.review.stopping import RecallEstimate, estimate_recall

PSEUDO_NEGATIVES = 0  # BMI draws 100; on bdci2019 dev they cost reads (1,755 vs 1,677 to 80%)
MAX_NEGATIVES = 1500
MARKET_BLOCKS = ("prior", "needs")  # with the extra:* columns: what the one-shot triage knows, fixed
MARKET_CHECK = True  # scale them by how well the one-shot score tells the decided results apart
MARKET_CHECK_MIN = 3
PRIOR_HALF: float | None = None  # transferable decisions at which the market columns' weight halves (None: never)
RECENT_NEGATIVES = 300


class ReviewLoop:
    """The review state of one pool: decisions by row, the current scores, the reading order so far."""

    def __init__(self, features: ReviewFeatures, classifier: str = DEFAULT_CLASSIFIER, seed: int = 0,
                 pseudo_negatives: int = PSEUDO_NEGATIVES, max_negatives: int = MAX_NEGATIVES,
                 prior_half: float | None = PRIOR_HALF, classifier_params: Mapping[str, float] | None = None,
                 drop_blocks: Iterable[str] = (), market_check: bool = MARKET_CHECK) -> None:
        self.features = features
        self.prior_half = prior_half
        self.classifier_params = dict(classifier_params or {})
        self.drop_blocks = set(drop_blocks)
        self.market_check = market_check
        self._scaled: tuple[float, sp.csr_matrix] | None = None
        self.row = features.index()
        self.classifier_name = classifier
        self.seed = seed
        self.pseudo_negatives = pseudo_negatives
        self.max_negatives = max_negatives
        self.labels: dict[int, int] = {}
        self.read_order: list[int] = []
        self.scores = features.prior.astype(float).copy()
        self.model: Classifier | None = None
        self.fit_seconds = 0.0
        self.refits = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.features.ids)

    def decide(self, result_id: str, label: int) -> None:
        """Record a decision (1 transferable, 0 not); a result decided twice keeps its last label."""
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {label!r}")
        i = self.row[result_id]
        if i not in self.labels:
            self.read_order.append(i)
        self.labels[i] = label

    def decide_many(self, decisions: Iterable[tuple[str, int]]) -> None:
        for rid, label in decisions:
            self.decide(rid, label)

    def gains(self) -> list[int]:
        """Transferable found after each read, in reading order."""
        return list(np.cumsum([self.labels[i] for i in self.read_order]).astype(int))

    def _training_rows(self) -> tuple[np.ndarray, np.ndarray]:
        decided = np.fromiter(self.read_order, dtype=int)
        y = np.asarray([self.labels[i] for i in decided], dtype=int)
        positives, negatives = decided[y == 1], decided[y == 0]
        if len(negatives) > self.max_negatives:
            recent = negatives[-RECENT_NEGATIVES:]
            older = negatives[:-RECENT_NEGATIVES]
            keep = self._rng.choice(older, self.max_negatives - RECENT_NEGATIVES, replace=False)
            negatives = np.concatenate([keep, recent])
        unread = np.setdiff1d(np.arange(len(self)), decided, assume_unique=False)
        pseudo = (self._rng.choice(unread, min(self.pseudo_negatives, len(unread)), replace=False)
                  if len(unread) and self.pseudo_negatives else np.empty(0, dtype=int))
        rows = np.concatenate([positives, negatives, pseudo]).astype(int)
        labels = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives) + len(pseudo))]).astype(int)
        return rows, labels

    def prior_scale(self) -> float:
        """The weight of what the one-shot triage knows (its score, the needs' strengths, readiness and pull
        columns) now: 1 until three results of each kind are decided, then 2 AUC - 1 of the one-shot score
        over the decisions (``market_check``; 0 where it orders them no better than chance); times, with
        ``prior_half``, a factor halved once ``prior_half`` transferable results are decided."""
        found = sum(self.labels.values())
        if self.prior_half is None:
            scale = 1.0
        else:
            scale = self.prior_half / (self.prior_half + found) if self.prior_half > 0 else 0.0
        if self.market_check and found >= MARKET_CHECK_MIN and len(self.labels) - found >= MARKET_CHECK_MIN:
            rows = np.fromiter(self.labels, dtype=int)
            y = np.asarray([self.labels[i] for i in rows])
            auc = float(roc_auc_score(y, self.features.prior[rows]))
            scale *= max(0.0, 2.0 * auc - 1.0)
        return scale

    def design(self) -> sp.csr_matrix:
        """The feature matrix the classifier sees: the market columns scaled by ``prior_scale``, the
        ``drop_blocks`` zeroed (cached while the scale does not change)."""
        scale = self.prior_scale()
        if scale == 1.0 and not self.drop_blocks:
            return self.features.matrix
        if self._scaled is not None and self._scaled[0] == scale:
            return self._scaled[1]
        column = np.ones(self.features.matrix.shape[1], dtype=np.float32)
        for name, (a, b) in self.features.blocks.items():
            if name in self.drop_blocks:
                column[a:b] = 0.0
            elif name in MARKET_BLOCKS or name.startswith("extra:"):
                column[a:b] = scale
        scaled = self.features.matrix.copy()
        scaled.data *= column[scaled.indices]
        self._scaled = (scale, scaled)
        return scaled

    def refit(self) -> np.ndarray:
        """Learn from every decision so far and score the whole pool (higher: read sooner).

        Without a decided transferable result the one-shot order stands (there is nothing to learn what is
        wanted from)."""
        start = time.perf_counter()
        if not any(self.labels.values()):
            self.scores = self.features.prior.astype(float).copy()
            self.model = None
        else:
            rows, y = self._training_rows()
            x = self.design()
            model = new_classifier(self.classifier_name, self.seed, **self.classifier_params)
            model.fit(x[rows], y)
            self.model = model
            self.scores = model.score(x)
        self.refits += 1
        self.fit_seconds = time.perf_counter() - start
        return self.scores

    def unread_mask(self, held: Iterable[str] = ()) -> np.ndarray:
        mask = np.ones(len(self), dtype=bool)
        if self.labels:
            mask[np.fromiter(self.labels, dtype=int)] = False
        for rid in held:
            if rid in self.row:
                mask[self.row[rid]] = False
        return mask

    def next_ids(self, k: int = 1, held: Iterable[str] = ()) -> list[str]:
        """The ``k`` unread results to read next, best first, never one in ``held`` (read by someone else)."""
        rows = max_relevance(self.scores, self.unread_mask(held), k)
        return [self.features.ids[i] for i in rows]

    def estimate(self) -> RecallEstimate:
        """Recall reached so far, with its uncertainty, and whether the knee method says stop."""
        unread = self.unread_mask()
        proba = np.zeros(int(unread.sum()))
        model = self.model
        if model is not None and unread.any():
            x = self.design()
            if not hasattr(model, "proba"):  # a margin classifier (svm): a logistic model for the estimate
                rows, y = self._training_rows()
                model = new_classifier("logistic", self.seed).fit(x[rows], y)
            p = model.proba(x[unread])
            # balanced class weights fit even odds: shift back to the odds seen in the decisions
            decided = np.asarray(list(self.labels.values()))
            pos, neg = max(int(decided.sum()), 1), max(int((decided == 0).sum()) + self.pseudo_negatives, 1)
            odds = p / np.clip(1 - p, 1e-9, None) * pos / neg
            proba = odds / (1 + odds)
        return estimate_recall(self.gains(), proba)

    def status(self) -> Mapping[str, object]:
        gains = self.gains()
        return {"decisions": len(gains), "found": gains[-1] if gains else 0, "pool": len(self),
                "gains": gains, **self.estimate().to_dict()}
