"""The hybrid index with its dense vectors in Milvus (a Milvus Lite file) ranks as it does on exact FAISS: the
fixture world's matches, filtered searches, changes, a save and load, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.filters import ResultFilters
from recommender.matcher import Matcher
from recommender.records import Record, load_needs, load_results
from recommender.settings import PipelineSettings
from tests.conftest import EXPECTED
from tests.test_cli import techmatch

FIXTURES = Path(__file__).parent / "fixtures"
QUERIES = ["三元锂电池正极材料循环寿命短，容量衰减快", "碳化硅功率模块开关损耗", "冲压零件表面划痕裂纹的视觉自动检测",
           "储能电池热失控预警"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Matcher, Matcher, Path]:
    cache = tmp_path_factory.mktemp("cache")
    folder = tmp_path_factory.mktemp("milvus")
    results, needs = load_results(FIXTURES / "results.jsonl"), load_needs(FIXTURES / "needs.jsonl")
    flat = Matcher.build(results, needs, PipelineSettings(cache_dir=cache))
    milvus = Matcher.build(results, needs, PipelineSettings(
        cache_dir=cache, ann_backend="milvus", milvus_uri=str(folder / "milvus.db")))
    assert milvus.results.signals["dense"].ann.backend == "milvus"
    return flat, milvus, folder


def ranking(matches: list) -> list[tuple[str, float]]:
    return [(m.id, round(m.score, 6)) for m in matches]


def test_same_matches_as_exact_faiss(pair):
    flat, milvus, _ = pair
    needs = load_needs(FIXTURES / "needs.jsonl")
    assert [ranking(m) for m in milvus.match_needs(needs, k=5)] == [ranking(m) for m in flat.match_needs(needs, k=5)]
    assert [m[0].id for m in milvus.match_needs(needs, k=1)] == [EXPECTED[n.id] for n in needs]
    assert list(map(ranking, milvus.match_texts(QUERIES, k=8))) == list(map(ranking, flat.match_texts(QUERIES, k=8)))
    for result_id in EXPECTED.values():  # the needs side has its own collection
        record = flat.result_record(result_id)
        assert ranking(milvus.match_results([record], k=3)[0]) == ranking(flat.match_results([record], k=3)[0])
    top = milvus.match_texts(QUERIES[:1], k=1)[0][0]
    assert top.signals["dense"].rank == 1 and top.signals["dense"].score > 0.5


def test_filtered_search_is_pushed_down_and_ranks_among_accepted(pair):
    """With the filter pushed down, each signal's rank is its rank among the accepted results (on FAISS: among all,
    so the order may differ; the accepted results found are the same)."""
    flat, milvus, _ = pair
    for filters in (ResultFilters(field="储能"), ResultFilters(trl_max=5), ResultFilters(trl_min=6, trl_max=9),
                    ResultFilters(institution="没有这所大学")):
        accepted = {d for d, r in flat.results.records.items() if filters.accepts(r)}
        for text in QUERIES:
            got = milvus.match_texts([text], k=8, filters=filters)[0]
            assert {m.id for m in got} == {m.id for m in flat.match_texts([text], k=8, filters=filters)[0]}
            assert {m.id for m in got} <= accepted
            query = Record("q", text, "").as_query()
            for name, signal in flat.results.signals.items():  # the reference: exact FAISS and the same lexical signals
                among = [d for d, _ in signal.search([query], len(flat.results))[0] if d in accepted]
                assert [m.signals[name].rank for m in got] == [
                    among.index(m.id) + 1 if m.id in among else None for m in got], (filters, text, name)
    # the dense signal's candidates of a filtered search come filtered from Milvus itself
    dense = milvus.results.signals["dense"]
    filters = ResultFilters(field="储能")
    hits = dense.search([Record("q", QUERIES[0], "").as_query()], 10, filters)[0]
    assert [d for d, _ in hits] == ["R4"]


def test_changes_save_and_load(pair, tmp_path: Path):
    flat, milvus, folder = pair
    new = Record("R9", "一种富锂锰基三元正极材料及其循环寿命改善方法", "通过表面包覆提高锂电池正极循环寿命。",
                 extra={"field": "富锂材料", "trl": 4})
    for matcher in (flat, milvus):
        matcher.results.upsert([new])
        matcher.results.delete(["R3"])
    assert list(map(ranking, milvus.match_texts(QUERIES, k=5))) == list(map(ranking, flat.match_texts(QUERIES, k=5)))
    assert [m.id for m in milvus.match_texts(QUERIES[:1], k=5, filters=ResultFilters(field="富锂材料"))[0]] == ["R9"]
    milvus.save(folder / "idx")
    loaded = Matcher.load(folder / "idx")
    assert loaded.results.signals["dense"].ann.backend == "milvus"
    assert list(map(ranking, loaded.match_texts(QUERIES, k=5))) == list(map(ranking, milvus.match_texts(QUERIES, k=5)))


def test_command_line_index_on_milvus(tmp_path: Path):
    out = tmp_path / "index"
    proc = techmatch("index", "--results", str(FIXTURES / "results.jsonl"), "--needs", str(FIXTURES / "needs.jsonl"),
                     "--out", str(out), "--backend", "milvus")
    assert proc.returncode == 0, proc.stderr
    assert f"vectors in Milvus at {out.resolve() / 'milvus.db'}" in proc.stdout
    manifest = json.loads((out / "results" / "dense" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["backend"] == "milvus" and manifest["collection"] == "techmatch_result"
    assert manifest["uri_relative"] == "../../milvus.db"
    proc = techmatch("match", "--index", str(out), "--needs", str(FIXTURES / "needs.jsonl"), "--top", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = map(json.loads, proc.stdout.strip().splitlines())
    assert {row["query"]: row["matches"][0]["id"] for row in rows} == EXPECTED
