"""The two cross-validation splits of the learning benchmarks, and the shortlist's paired test over needs."""

from __future__ import annotations

import numpy as np
import pytest

from eval.benchmarks.shortlist_bdci import precision_at, precision_p_value, shortlist_runs
from eval.benchmarks.splits import fold_qrels, pair_folds

GROUPS = [f"N{i // 6}" for i in range(60)]  # 10 needs, 6 judged pairs each


def test_split_by_need_never_shares_a_need_and_split_by_pair_does():
    for split in ("need", "pair"):
        folds = pair_folds(split, GROUPS, 5, seed=0)
        tested = np.sum([test for _, test in folds], axis=0)
        assert (tested == 1).all()  # every pair is evaluated exactly once
        shared = [set(np.asarray(GROUPS)[train]) & set(np.asarray(GROUPS)[test]) for train, test in folds]
        for (train, test) in folds:
            assert not (train & test).any()
        if split == "need":
            assert not any(shared)
        else:
            assert all(shared)  # the contest's case: the models saw other pairs of the evaluated needs
    with pytest.raises(ValueError, match="unknown split"):
        pair_folds("result", GROUPS, 5)


def test_fold_qrels_keeps_only_the_masked_pairs():
    mask = np.zeros(60, dtype=bool)
    mask[[0, 7]] = True
    qrels = fold_qrels(GROUPS, [f"R{i}" for i in range(60)], [i % 4 for i in range(60)], mask)
    assert qrels == {"N0": {"R0": 0}, "N1": {"R7": 3}}


def test_shortlist_precision_decomposes_over_needs_and_a_better_list_is_significant():
    qrels = {f"N{q}": {f"R{q}_{i}": 3 if i < 2 else 0 for i in range(5)} for q in range(12)}
    strong = [f"R{q}_{i}" for q in range(12) for i in range(2)]
    weak = [f"R{q}_{i}" for q in range(12) for i in range(2, 5)]
    k = len(strong)
    good, bad = strong + weak, weak + strong
    runs = shortlist_runs(good, qrels, k)
    assert sum(len(r) for r in runs.values()) == k and precision_at(good, set(strong), k) == 1.0
    assert precision_p_value(bad, good, qrels, k) < 0.01
    assert precision_p_value(good, good, qrels, k) == 1.0
