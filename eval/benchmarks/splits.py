"""The two cross-validation splits every learning benchmark reports side by side.

* ``need``: GroupKFold on the need id. A need's judged pairs are all in one fold, so every figure is for
  needs the models never saw: the service's real case (an enterprise posts a new need).
* ``pair``: KFold over the judged pairs (shuffled, seeded). A need's pairs are spread over the folds, so the
  models were trained on other pairs of the same needs: the BDCI contest's case (its train and test
  pairs share almost all needs), which flatters every learned figure.

Both return folds as boolean masks over the judged pairs, so one benchmark loop serves both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import GroupKFold, KFold

SPLITS = ("need", "pair")
SPLIT_TITLES = {"need": "split by need (new needs)", "pair": "split by pair (seen needs)"}


def pair_folds(split: str, groups: Sequence[str], folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train mask, test mask) over the pairs for each fold; ``groups`` is the need id of each pair."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}': use one of {', '.join(SPLITS)}")
    groups = np.asarray(groups)
    splitter = GroupKFold(folds) if split == "need" else KFold(folds, shuffle=True, random_state=seed)
    out = []
    for train, test in splitter.split(groups, groups=groups if split == "need" else None):
        train_mask = np.zeros(len(groups), dtype=bool)
        train_mask[train] = True
        test_mask = np.zeros(len(groups), dtype=bool)
        test_mask[test] = True
        out.append((train_mask, test_mask))
    return out


def fold_qrels(
    groups: Sequence[str], result_ids: Sequence[str], grades: Sequence[int], mask: np.ndarray
) -> dict[str, dict[str, int]]:
    """The judgements of the pairs selected by ``mask``, as qrels (need id -> result id -> grade)."""
    out: dict[str, dict[str, int]] = {}
    for need, result, grade, keep in zip(groups, result_ids, grades, mask):
        if keep:
            out.setdefault(str(need), {})[str(result)] = int(grade)
    return out
