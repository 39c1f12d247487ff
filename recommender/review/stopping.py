"""When reading more is no longer worth it, and how much has been found.

The stopping rule is Cormack and Grossman's knee method ("Engineering quality and reliability in
technology-assisted review", SIGIR 2016): at ``s`` reads, the knee is the point of the gain curve farthest
from the line through the origin and the current point; stopping is reasonable once the slope before the knee
is at least ``156 - min(found, 150)`` times the slope after it (with a +1 smoothing of the slope after) and
at least 150 results were read. Why this one: it needs no extra reading (a target set or a random sample
costs reads the broker wants to spend on likely results), it was published for exactly this loop (CAL/BMI)
and it reached 95% recall on most TREC Total Recall topics in its authors' measurements.

The estimate of recall shown beside it, with its uncertainty, is the model's: each unread result's
calibrated probability of being transferable, summed (expected relevant not yet found) with its
Poisson-binomial variance; a normal interval on that count gives the recall interval. It is a model's
belief, not a sample, and it is labelled so on the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KNEE_MIN_READS = 150


def knee_point(gains: Sequence[int]) -> int:
    """Reads at the knee of the gain curve (``gains[i]`` = found after i + 1 reads): the point farthest from
    the line through (0, 0) and the last point."""
    s = len(gains)
    if s == 0 or gains[-1] == 0:
        return 0
    x = np.arange(1, s + 1, dtype=float)
    y = np.asarray(gains, dtype=float)
    # distance to the line y = (g / s) x, up to a constant factor
    distance = y * s - x * y[-1]
    return int(np.argmax(distance)) + 1


def slope_ratio(gains: Sequence[int]) -> float:
    """The knee method's ratio of the slope before the knee to the (smoothed) slope after it."""
    s = len(gains)
    i = knee_point(gains)
    if i == 0:
        return 0.0
    before = gains[i - 1] / i
    after = (gains[-1] - gains[i - 1] + 1) / max(s - i, 1)
    return before / after


def knee_stop(gains: Sequence[int], min_reads: int = KNEE_MIN_READS) -> bool:
    """True when the knee method says stopping is reasonable."""
    found = gains[-1] if gains else 0
    return len(gains) >= min_reads and found > 0 and slope_ratio(gains) >= 156 - min(found, 150)


@dataclass
class RecallEstimate:
    """Recall reached: point estimate and a 95% interval, from the model's probabilities of the unread."""

    found: int
    expected_remaining: float
    recall: float
    low: float
    high: float
    stop: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"found": self.found, "expected_remaining": round(self.expected_remaining, 2),
                "recall": round(self.recall, 4), "recall_low": round(self.low, 4),
                "recall_high": round(self.high, 4), "stop": self.stop}


def estimate_recall(gains: Sequence[int], unread_proba: np.ndarray) -> RecallEstimate:
    """Recall estimate from the gain curve so far and the calibrated P(transferable) of every unread result."""
    found = int(gains[-1]) if len(gains) else 0
    p = np.clip(np.asarray(unread_proba, dtype=float), 0.0, 1.0)
    mean = float(p.sum())
    sd = math.sqrt(float((p * (1 - p)).sum()))
    lo_rem, hi_rem = max(mean - 1.96 * sd, 0.0), mean + 1.96 * sd

    def recall(rem: float) -> float:
        return found / (found + rem) if found + rem > 0 else 0.0

    return RecallEstimate(found, mean, recall(mean), recall(hi_rem), recall(lo_rem), knee_stop(gains))
