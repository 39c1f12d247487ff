"""The review loop (recommender/review): it learns from decisions, holds, stops, and simulates honestly."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.review import ReviewLoop, build_features, knee_stop, simulate
from recommender.review.query import max_relevance, next_batch_size
from recommender.review.stopping import knee_point

WANTED = ["锂电池正极材料", "固态电解质薄膜", "动力电池热管理", "钠离子电池负极", "电池回收再生"]
OTHER = ["古代诗词格律", "城市园林设计", "乡村旅游规划", "民俗音乐采集", "书法艺术教育", "茶叶品种培育"]


def pool(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids, texts, labels = [], [], {}
    for i in range(n):
        relevant = i % 10 == 0
        topic = rng.choice(WANTED if relevant else OTHER)
        ids.append(f"R{i:04d}")
        texts.append(f"{topic}研究第{rng.integers(100)}号")
        labels[ids[-1]] = int(relevant)
    return ids, texts, labels


def test_loop_finds_the_relevant_sooner_than_random_and_one_shot_follows_the_prior():
    ids, texts, labels = pool()
    features = build_features(ids, texts, prior={r: float(i) for i, r in enumerate(reversed(ids))})
    loop = simulate(features, labels, "loop", seed=1).to_dict()
    rand = simulate(features, labels, "random", seed=1).to_dict()
    assert loop["pool"] == 300 and loop["relevant"] == 30
    assert loop["reads_to_95"] < 0.5 * rand["reads_to_95"]
    assert loop["wss@95"] > rand["wss@95"] + 0.3
    one_shot = simulate(features, labels, "one-shot", seed=1)
    # after the two priors, the one-shot order is the prior's: the first ids have the highest prior
    assert one_shot.order[2:5] == [r for r in ids if r not in one_shot.order[:2]][:3]


def test_no_decision_keeps_the_one_shot_order_and_held_results_are_never_offered():
    ids, texts, labels = pool(50)
    prior = {r: 1.0 / (i + 1) for i, r in enumerate(ids)}
    loop = ReviewLoop(build_features(ids, texts, prior=prior))
    loop.refit()
    assert loop.next_ids(3) == ids[:3]
    assert loop.next_ids(3, held=[ids[0], ids[2]]) == [ids[1], ids[3], ids[4]]
    loop.decide(ids[0], 1)
    loop.decide(ids[1], 0)
    loop.refit()
    assert ids[0] not in loop.next_ids(10) and loop.gains() == [1, 1]
    with pytest.raises(ValueError):
        loop.decide(ids[2], 2)


def test_estimate_and_knee():
    ids, texts, labels = pool()
    loop = ReviewLoop(build_features(ids, texts))
    order = sorted(ids, key=lambda r: -labels[r])  # every relevant first: a sharp knee
    loop.decide_many((r, labels[r]) for r in order[:200])
    loop.refit()
    estimate = loop.estimate()
    assert estimate.found == 30 and 0 <= estimate.low <= estimate.recall <= estimate.high <= 1
    assert estimate.recall > 0.8
    gains = list(np.cumsum([labels[r] for r in order[:200]]))
    assert knee_point(gains) == 30 and knee_stop(gains)
    assert not knee_stop(gains[:40])  # too few reads
    assert not knee_stop(list(range(1, 201)))  # still finding one a read


def test_query_helpers():
    scores = np.array([0.1, 0.9, 0.5, 0.9])
    unread = np.array([True, True, False, True])
    assert list(max_relevance(scores, unread, 2)) == [1, 3]
    assert list(max_relevance(scores, unread, 9)) == [1, 3, 0]
    assert [next_batch_size(b) for b in (1, 10, 11)] == [2, 11, 13]


def test_market_columns_fade_with_transferable_decisions_and_blocks_are_named():
    ids, texts, labels = pool(60)
    features = build_features(ids, texts, prior={r: float(i) for i, r in enumerate(ids)},
                              extra={"readiness": [1.0 if i % 2 else 0.0 for i in range(60)]})
    assert {"chars", "words", "prior", "extra:readiness"} <= set(features.blocks)
    a, b = features.blocks["words"]
    assert features.matrix[:, a:b].nnz > 0  # jieba's words are there beside the characters
    loop = ReviewLoop(features, prior_half=2, market_check=False)
    p = features.blocks["prior"][0]
    assert loop.prior_scale() == 1.0 and loop.design() is features.matrix
    loop.decide_many([(ids[0], 1), (ids[10], 1), (ids[1], 0)])
    assert loop.prior_scale() == 0.5
    scaled = loop.design()
    np.testing.assert_allclose(scaled[:, p].toarray(), 0.5 * features.matrix[:, p].toarray())
    np.testing.assert_allclose(scaled[:, :p].toarray(), features.matrix[:, :p].toarray())  # text untouched
    assert ReviewLoop(features, prior_half=None, market_check=False).prior_scale() == 1.0
    checked = ReviewLoop(features, prior_half=None)  # the default: weighted by the prior's AUC on the decisions
    checked.decide_many([(ids[i], 1) for i in (50, 51, 52)] + [(ids[i], 0) for i in (0, 1, 2)])
    assert checked.prior_scale() == 1.0  # the prior (rising with the row) orders them perfectly
    checked.decide_many([(ids[i], 0) for i in (57, 58, 59)])
    assert checked.prior_scale() == 0.0  # now no better than chance


def test_every_classifier_learns_and_the_svm_still_gives_an_estimate():
    from recommender.review.classifier import CLASSIFIERS, balanced_weights

    w = balanced_weights(np.array([1, 0, 0, 0]), 9.8)
    assert w.sum() == pytest.approx(4) and w[0] == pytest.approx(9.8 * w[1:].sum())
    ids, texts, labels = pool(200)
    features = build_features(ids, texts)
    for name in CLASSIFIERS:
        result = simulate(features, labels, "loop", seed=2, classifier=name).to_dict()
        assert result["wss@95"] > 0.4, name
    loop = ReviewLoop(features, classifier="svm")
    loop.decide_many((r, labels[r]) for r in ids[:40])
    loop.refit()
    estimate = loop.estimate()
    assert estimate.found == 4 and 0 < estimate.expected_remaining < 200 - 40
