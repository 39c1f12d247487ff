"""Replaying a labelled review: how much reading a strategy needs to find what is transferable.

The measures are those of the systematic-review literature (and of ASReview's simulations): reads to 80% and
95% recall (the priors count as read), work saved over sampling at 95% recall (WSS@95 = (pool - reads_to_95)
/ pool - 0.05) and recall after reading 10% of the pool.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from recommender.review.classifier import DEFAULT_CLASSIFIER
from recommender.review.features import ReviewFeatures
from recommender.review.loop import ReviewLoop
from recommender.review.query import next_batch_size

STRATEGIES = ("loop", "one-shot", "random")
MAX_BATCH: int | None = 10  # BMI's growth, capped: a campaign refits after every decision or few


@dataclass
class SimulationResult:
    strategy: str
    pool: int
    relevant: int
    order: list[str]
    gains: list[int]
    seconds: float
    refits: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def reads_to(self, share: float) -> int:
        """Reads (priors included) until ``share`` of the relevant results are found."""
        need = math.ceil(share * self.relevant - 1e-9)
        return int(np.searchsorted(np.asarray(self.gains), need) + 1)

    def recall_at(self, share: float) -> float:
        reads = max(int(math.floor(share * self.pool)), 1)
        return self.gains[min(reads, len(self.gains)) - 1] / self.relevant

    def to_dict(self) -> dict[str, object]:
        r95 = self.reads_to(0.95)
        return {"pool": self.pool, "relevant": self.relevant, "strategy": self.strategy,
                "reads_to_80": self.reads_to(0.80), "reads_to_95": r95,
                "wss@95": round((self.pool - r95) / self.pool - 0.05, 4),
                "recall@10%": round(self.recall_at(0.10), 4), "seconds": round(self.seconds, 2),
                "refits": self.refits, **self.extra}


def draw_priors(labels: Mapping[str, int], included: int, excluded: int, seed: int) -> list[str]:
    """The results known at the start: ``included`` labelled 1 and ``excluded`` labelled 0, drawn by seed."""
    rng = np.random.default_rng(seed)
    ones = sorted(r for r, y in labels.items() if y == 1)
    zeros = sorted(r for r, y in labels.items() if y == 0)
    if included > len(ones) or excluded > len(zeros):
        raise ValueError(f"cannot draw {included} included and {excluded} excluded priors from "
                         f"{len(ones)} relevant and {len(zeros)} irrelevant results")
    return [ones[i] for i in rng.choice(len(ones), included, replace=False)] + \
        [zeros[i] for i in rng.choice(len(zeros), excluded, replace=False)]


def simulate(
    features: ReviewFeatures, labels: Mapping[str, int], strategy: str = "loop", prior_included: int = 1,
    prior_excluded: int = 1, seed: int = 0, classifier: str = DEFAULT_CLASSIFIER, max_batch: int | None = MAX_BATCH,
    **loop_options: object,
) -> SimulationResult:
    """Read the whole pool in the strategy's order; the label of each result is the broker's decision.
    The loop refits after each batch; batches grow as BMI's up to ``max_batch`` (None: without bound; 1: a
    refit after every decision, as a campaign does with one broker). Once every relevant result is found the
    rest is read in the last model's order without refits (it changes no measure). ``loop_options`` go to
    ``ReviewLoop`` (pseudo_negatives, max_negatives, prior_half, ...)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy '{strategy}': use one of {', '.join(STRATEGIES)}")
    start = time.perf_counter()
    ids = features.ids
    priors = draw_priors(labels, prior_included, prior_excluded, seed)
    refits = 0
    if strategy == "random":
        rest = [r for r in ids if r not in set(priors)]
        order = priors + [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))]
    elif strategy == "one-shot":
        known = set(priors)
        rest = sorted((i for i, r in enumerate(ids) if r not in known), key=lambda i: (-features.prior[i], ids[i]))
        order = priors + [ids[i] for i in rest]
    else:
        loop = ReviewLoop(features, classifier=classifier, seed=seed, **loop_options)
        loop.decide_many((r, labels[r]) for r in priors)
        batch, relevant = 1, sum(labels.values())
        while len(loop.labels) < len(ids):
            loop.refit()
            if sum(loop.labels.values()) == relevant:
                batch = len(ids)
            for rid in loop.next_ids(batch):
                loop.decide(rid, labels[rid])
            batch = next_batch_size(batch) if max_batch is None else min(next_batch_size(batch), max_batch)
        order = [ids[i] for i in loop.read_order]
        refits = loop.refits
    gains = list(np.cumsum([labels[r] for r in order]).astype(int))
    return SimulationResult(strategy, len(ids), int(sum(labels.values())), order, gains,
                            time.perf_counter() - start, refits)
