"""Relevance feedback on one need's list (``Engine.results_with_feedback``): a rejected result's near
neighbours go down and an accepted one's go up, with the real default pipeline (e5, BM25, char n-grams)."""

from __future__ import annotations

import pytest

from recommender.engine import Engine
from recommender.records import Record

NEED = Record("N", "锂电池材料性能提升", "提升锂电池关键材料的性能")
FAMILY_A = ["锂电池正极材料表面包覆改性方法", "一种锂电池正极材料的表面包覆改性工艺", "锂电池正极材料表面包覆改性装置"]
FAMILY_B = ["锂电池隔膜陶瓷涂覆技术", "一种锂电池隔膜的陶瓷涂覆方法", "锂电池隔膜陶瓷涂覆设备"]
OTHERS = ["水稻抗病育种分子标记方法", "城市污水处理膜生物反应器", "量子密钥分发相位补偿", "工业机器人视觉标定方法"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    results = [Record(f"A{i}", t, "") for i, t in enumerate(FAMILY_A, 1)]
    results += [Record(f"B{i}", t, "") for i, t in enumerate(FAMILY_B, 1)]
    results += [Record(f"O{i}", t, "") for i, t in enumerate(OTHERS, 1)]
    return Engine.build(results)


def _positions(matches) -> dict[str, int]:
    return {m.id: i for i, m in enumerate(matches)}


@pytest.mark.parametrize(("rejected", "accepted"), [("A1", "B1"), ("B1", "A1")])
def test_judgements_move_neighbours(engine: Engine, rejected: str, accepted: str):
    ranked = engine.results_with_feedback(NEED, {rejected: "irrelevant", accepted: "relevant"}, k=8)
    at = _positions(ranked)
    assert rejected not in at and accepted not in at  # judged results leave the rest of the list
    down, up = rejected[0], accepted[0]
    worst_up = max(at[f"{up}{i}"] for i in (2, 3))
    best_down = min(at[f"{down}{i}"] for i in (2, 3))
    assert worst_up < best_down, [m.id for m in ranked]
    assert [m.rank for m in ranked] == list(range(1, len(ranked) + 1))
    assert all(m.shared_terms for m in ranked[:2])  # the shown results are explained


def test_interest_counts_as_acceptance_and_nothing_judged_is_the_plain_list(engine: Engine):
    plain = [m.id for m in engine.results_for([NEED], 8)[0]]
    assert [m.id for m in engine.results_with_feedback(NEED, {}, 8)] == plain
    marked = [m.id for m in engine.results_with_feedback(NEED, {"B1": "interested", "A1": "irrelevant"}, 8)]
    accepted = [m.id for m in engine.results_with_feedback(NEED, {"B1": "relevant", "A1": "irrelevant"}, 7)]
    assert "B1" in marked and [i for i in marked if i != "B1"] == accepted  # a marked result stays listed


def test_duplicates_of_a_rejected_result_can_be_sent_to_the_bottom(engine: Engine):
    plain = [m.id for m in engine.results_with_feedback(NEED, {"A1": "irrelevant"}, 9)]
    sunk = [m.id for m in engine.results_with_feedback(NEED, {"A1": "irrelevant"}, 9, demote_duplicates=True)]
    assert sorted(plain) == sorted(sunk) and "A1" not in sunk
    assert sunk.index("A2") > max(sunk.index(f"B{i}") for i in (1, 2, 3)), sunk
