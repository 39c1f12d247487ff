"""The engine owns the live index: writes never wait for a whole shortlist, the market pull is kept per index
version, and small and large sides change the way they should (refit beside the live one, or in place)."""

from __future__ import annotations

import threading

import pytest

from data.synthetic import generate_world
from recommender import engine as engine_module
from recommender.engine import Engine
from recommender.errors import EmptyIndexError
from recommender.records import Record, parse_record
from recommender.settings import PipelineSettings

LEXICAL = PipelineSettings(signals=["bm25", "char"])  # the dense signal is covered elsewhere; keep this fast


@pytest.fixture(scope="module")
def world() -> tuple[list[Record], list[Record]]:
    raw = generate_world(seed=3, n_results=300, n_needs=520, n_enterprises=20, n_funds=5)
    parse = lambda rows, kind: [parse_record(r, kind, "world", str(i))[0] for i, r in enumerate(rows)]  # noqa: E731
    return parse(raw.results, "result"), parse(raw.needs, "need")


def test_a_write_goes_through_while_the_shortlist_is_being_computed(world):
    results, needs = world
    engine = Engine.build(results, needs, LEXICAL)
    new = Record("R-new", "全固态锂电池硫化物电解质", "一种高离子电导率的硫化物固态电解质及其制备方法")
    written = threading.Event()
    progress: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        progress.append((done, total))
        if len(progress) == 1:  # one batch of needs matched, more to come: a broker adds a result now
            writer = threading.Thread(target=lambda: (engine.apply("result", [new]), written.set()))
            writer.start()
            writer.join(timeout=60)  # were the lock held for the whole computation, this would wait it out

    engine.shortlist(10, on_progress=on_progress)
    assert written.is_set() and progress[0][0] < progress[-1][0] == progress[-1][1] == len(needs) + 10
    assert engine.results_for([Record("q", "硫化物固态电解质")], 1)[0][0].id == "R-new"


def test_the_market_pull_is_kept_until_the_index_changes(world):
    results, needs = world
    engine = Engine.build(results[:50], needs[:30], LEXICAL)
    first = engine.market_pull()
    assert engine.market_pull() is first  # same version: not computed again
    engine.apply("need", deletes=[needs[0].id])
    again = engine.market_pull()
    assert again is not first and needs[0].id not in again.needs
    assert engine.shortlist(5)[0].rank == 1


def test_small_sides_are_refitted_and_large_ones_changed_in_place(world, monkeypatch: pytest.MonkeyPatch):
    results, _ = world
    engine = Engine.build(results[:40], None, LEXICAL)
    before = engine.matcher.results
    engine.apply("result", [results[40]])
    assert engine.matcher.results is not before and len(engine.matcher.results) == 41  # a fresh fit, swapped in
    monkeypatch.setattr(engine_module, "REFIT_BELOW", 10)
    live = engine.matcher.results
    engine.apply("result", [results[41]], deletes=[results[0].id])
    assert engine.matcher.results is live and len(live) == 41  # changed in place
    assert results[0].id not in engine.records("result") and engine.version == 2


def test_an_empty_side_says_what_to_add():
    engine = Engine.build([Record("R1", "锂电池正极材料")], None, LEXICAL)
    with pytest.raises(EmptyIndexError, match="holds no needs"):
        engine.needs_for([engine.record("result", "R1")])
    with pytest.raises(EmptyIndexError, match="no needs or funds"):
        engine.push_result("R1")
