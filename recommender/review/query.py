"""What to read next: the unread results the model scores highest, in batches that grow as in BMI.

Cormack and Grossman's BMI reads batches of size B, then B + ceil(B / 10): early decisions refit the model
often, where each one teaches most; later ones cost few refits over a long review.
"""

from __future__ import annotations

import math

import numpy as np


def max_relevance(scores: np.ndarray, unread: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the ``k`` unread rows with the highest scores, best first (ties: lower row first)."""
    candidates = np.flatnonzero(unread)
    if len(candidates) <= k:
        order = np.lexsort((candidates, -scores[candidates]))
        return candidates[order]
    part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
    return part[np.lexsort((part, -scores[part]))]


def next_batch_size(size: int) -> int:
    """BMI's growth: B -> B + ceil(B / 10)."""
    return size + math.ceil(size / 10)
