"""Hybrid ranking on a small hand-written Chinese world: the obviously right match ranks first, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.filters import ResultFilters
from recommender.fusion import reciprocal_rank_fusion
from recommender.matcher import Matcher
from recommender.records import Record, load_needs, load_results
from recommender.settings import PipelineSettings
from tests.conftest import EXPECTED


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    fixtures = Path(__file__).parent / "fixtures"
    settings = PipelineSettings(cache_dir=tmp_path_factory.mktemp("cache"))
    return Matcher.build(load_results(fixtures / "results.jsonl"), load_needs(fixtures / "needs.jsonl"), settings)


def test_need_to_results_right_result_first(matcher: Matcher, needs_path: Path):
    needs = load_needs(needs_path)
    for need, matches in zip(needs, matcher.match_needs(needs, k=3)):
        assert matches[0].id == EXPECTED[need.id], (need.title, [m.title for m in matches])


def test_result_to_needs_right_need_first(matcher: Matcher):
    for need_id, result_id in EXPECTED.items():
        matches = matcher.match_results([matcher.result_record(result_id)], k=2)[0]
        assert matches[0].id == need_id, (result_id, [m.title for m in matches])


def test_each_match_carries_signals_and_explanation(matcher: Matcher):
    matches = matcher.match_texts(["三元锂电池正极材料循环寿命短，容量衰减快"], k=8)[0]
    top = matches[0]
    assert top.id == "R1"
    assert set(top.signals) == {"dense", "bm25", "char"}
    assert all(s.rank is not None and s.score > 0 for s in top.signals.values())
    assert "正极材料" in top.shared_terms or "三元" in "".join(top.shared_terms)
    assert [m.rank for m in matches] == list(range(1, len(matches) + 1))
    assert all(a.score >= b.score for a, b in zip(matches, matches[1:]))


def test_filter_update_and_delete_without_rebuild(matcher: Matcher):
    query = ["三元锂电池正极材料循环寿命短"]
    filtered = matcher.match_texts(query, k=3, filters=ResultFilters(field="储能"))[0]
    assert [m.id for m in filtered] == ["R4"]
    new = Record("R9", "一种富锂锰基三元正极材料及其循环寿命改善方法", "通过表面包覆提高锂电池正极循环寿命。")
    matcher.results.upsert([new])
    assert matcher.match_texts(query, k=2)[0][0].id in {"R1", "R9"}
    matcher.results.delete(["R1", "R9"])
    assert all(m.id not in {"R1", "R9"} for m in matcher.match_texts(query, k=8)[0])
    matcher.results.upsert([Record("R1", "一种高镍三元正极材料的制备方法", "提高锂离子电池的循环寿命。")])
    assert matcher.match_texts(query, k=1)[0][0].id == "R1"


def test_save_and_load_keep_the_ranking(matcher: Matcher, tmp_path: Path):
    before = [(m.id, round(m.score, 6)) for m in matcher.match_texts(["碳化硅功率模块开关损耗"], k=5)[0]]
    matcher.save(tmp_path / "idx")
    loaded = Matcher.load(tmp_path / "idx")
    after = [(m.id, round(m.score, 6)) for m in loaded.match_texts(["碳化硅功率模块开关损耗"], k=5)[0]]
    assert before == after
    assert loaded.needs is not None and len(loaded.needs) == 4


def test_rrf_weights_and_ties():
    fused = reciprocal_rank_fusion({"a": [("x", 9.0), ("y", 1.0)], "b": [("y", 5.0), ("x", 1.0)]}, k=60)
    assert [d for d, _ in fused] == ["x", "y"]  # tie broken by id
    weighted = reciprocal_rank_fusion({"a": [("x", 9.0), ("y", 1.0)], "b": [("y", 5.0), ("x", 1.0)]},
                                      {"a": 1.0, "b": 2.0}, k=60)
    assert weighted[0][0] == "y"
    assert weighted[0][1] == pytest.approx(1 / 62 + 2 / 61)


def test_bm25_over_documents_without_a_single_word_answers_nothing_instead_of_failing():
    from embeddings.tokenizer import get_tokenizer
    from recommender.lexical import BM25Signal
    from recommender.signal import Texts

    tokenize = get_tokenizer().tokenize
    assert tokenize("旧需求") == []  # boilerplate only: the lexicon drops it
    signal = BM25Signal(tokenize)
    signal.fit(["N9"], [Texts("旧需求")])
    assert signal.search([Texts("锂电池正极材料")], 10) == [[]]
    signal.upsert(["N10"], [Texts("锂电池正极材料循环寿命")])
    assert [d for d, _ in signal.search([Texts("锂电池正极材料")], 10)[0]] == ["N10"]
