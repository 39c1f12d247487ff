"""Writes off the search path: the lexical signals change by their own rows (BM25 scores stay bm25s's, TF-IDF
scores stay a fitted vocabulary's), and a large side's write does its costly part while searches go on."""

from __future__ import annotations

import random
import threading

import bm25s
import numpy as np
import pytest

from data.synthetic import generate_world
from embeddings.tokenizer import get_tokenizer
from recommender import engine as engine_module
from recommender.duplicates import DuplicateGroups
from recommender.engine import Engine
from recommender.lexical import BM25Signal, TfidfSignal
from recommender.records import Record, parse_record
from recommender.settings import PipelineSettings
from recommender.signal import Texts

LEXICAL = PipelineSettings(signals=["bm25", "char"])


@pytest.fixture(scope="module")
def results() -> list[Record]:
    raw = generate_world(seed=5, n_results=260, n_needs=0, n_enterprises=1, n_funds=0)
    return [parse_record(r, "result", "world", str(i))[0] for i, r in enumerate(raw.results)]


def _texts(records: list[Record]) -> list[Texts]:
    return [r.as_passage() for r in records]


def test_bm25_changed_in_place_scores_as_bm25s_over_the_live_documents(results):
    tokenize = get_tokenizer().tokenize
    signal = BM25Signal(tokenize)
    signal.fit([r.id for r in results[:200]], _texts(results[:200]))
    signal.upsert([r.id for r in results[200:230]], _texts(results[200:230]))  # new
    replaced = [Record(r.id, results[240 + i].title, results[240 + i].body) for i, r in enumerate(results[:10])]
    signal.stage([r.id for r in replaced], _texts(replaced), deletes=[r.id for r in results[20:40]])()
    live = {r.id: r for r in results[:230] if r not in results[20:40]} | {r.id: r for r in replaced}
    ids = list(live)
    oracle = bm25s.BM25(k1=signal.k1, b=signal.b)
    oracle.index([tokenize(live[i].as_passage().text) for i in ids], show_progress=False)
    for query in [r.title for r in results[230:245]] + ["锂电池 正极 材料 锂电池"]:
        mine = signal.score([Texts(query)], [ids])[0]
        expected = oracle.get_scores(tokenize(query)) if any(t in oracle.vocab_dict for t in tokenize(query)) \
            else np.zeros(len(ids))
        np.testing.assert_allclose(mine, expected[:len(ids)], rtol=1e-5, atol=1e-6)
        top = signal.search([Texts(query)], 5)[0]
        np.testing.assert_allclose([s for _, s in top], np.sort(expected[:len(ids)])[::-1][:len(top)], rtol=1e-5)
        assert all(abs(expected[ids.index(d)] - s) < 1e-4 for d, s in top)  # ties may come in another order
    assert not set(live) ^ {d for d in signal.slots.row}


def test_tfidf_rows_added_beside_and_merged_score_as_the_fitted_vocabulary(results, monkeypatch):
    monkeypatch.setattr(TfidfSignal, "MERGE_ABOVE", 12)
    signal = TfidfSignal("char", "char", (1, 2), sublinear_tf=False)
    signal.fit([r.id for r in results[:200]], _texts(results[:200]))
    for start in range(200, 240, 5):  # 5 rows at a time: kept beside, merged once there are more than 12
        chunk = results[start:start + 5]
        signal.upsert([r.id for r in chunk], _texts(chunk))
        if start == 205:
            assert signal._extra.shape[0] == 10
    assert signal._main.shape[0] > 200  # merged at least once
    signal.delete([r.id for r in results[:30]])
    live = results[30:240]
    expected = signal.vectorizer.transform([r.as_passage().text for r in live])
    for query in results[240:250]:
        q = signal.vectorizer.transform([query.as_passage().text])
        scores = (expected @ q.T).toarray().ravel()
        top = signal.search([query.as_passage()], 5)[0]
        np.testing.assert_allclose([s for _, s in top], np.sort(scores)[::-1][:5], rtol=1e-5)
        assert {d for d, _ in top} <= {r.id for r in live}
        mine = signal.score([query.as_passage()], [[r.id for r in live]])[0]
        np.testing.assert_allclose(mine, scores, rtol=1e-5, atol=1e-6)


def test_a_large_side_answers_searches_while_a_write_is_being_prepared(results, monkeypatch):
    monkeypatch.setattr(engine_module, "REFIT_BELOW", 10)
    engine = Engine.build(results[:200], None, LEXICAL)
    bm25 = engine.matcher.results.signals["bm25"]
    tokenize, writer = bm25.tokenize, threading.current_thread()
    staging, go_on = threading.Event(), threading.Event()

    def slow_in_the_writer(text: str) -> list[str]:  # the real tokenizer, held up in the writing thread only
        if threading.current_thread() is writer:
            staging.set()
            assert go_on.wait(30)
        return tokenize(text)

    bm25.tokenize = slow_in_the_writer
    new = Record("R-new", "全固态锂电池硫化物电解质隔膜", "一种高离子电导率的硫化物固态电解质")

    def write() -> None:
        nonlocal writer
        writer = threading.current_thread()
        engine.apply("result", [new])

    thread = threading.Thread(target=write)
    thread.start()
    assert staging.wait(30)
    answered = []
    reader = threading.Thread(target=lambda: answered.append(engine.results_for([Record("q", results[3].title)], 3)))
    reader.start()
    reader.join(10)  # had the write taken the search lock while tokenizing, this search would wait for it
    assert answered and answered[0][0][0].id == results[3].id and "R-new" not in engine.records("result")
    go_on.set()
    thread.join(30)
    assert engine.results_for([Record("q", new.title)], 3)[0][0].id == "R-new" and engine.version == 1


def test_duplicate_groups_recomputed_where_touched_equal_a_full_regrouping(results):
    titles = [r.title for r in results[:60]]
    groups = DuplicateGroups()
    groups.build((f"D{i}", t) for i, t in enumerate(titles))
    rng = random.Random(7)
    for step in range(60):
        ids = list(groups._keys)
        if step % 3 == 2:  # deletes, often of a grouped record (a group splits or goes)
            grouped = [d for d in ids if groups.group_of(d) != d] or ids
            groups.stage([], rng.sample(grouped, 2))()
        else:  # near and exact copies of stored titles, new or replacing a stored record's title
            base = [groups._keys[d] for d in rng.sample(ids, 3)]
            items = [(f"N{step}-{i}" if i else rng.choice(ids), t + ("" if i == 1 else "改进"))
                     for i, t in enumerate(base)]
            if step % 2:
                groups.upsert(items)
            else:
                groups.stage(items)()
        kept = (dict(groups._group), dict(groups._members))
        groups._components()
        assert kept == (groups._group, groups._members), step
    assert groups.groups()  # the walk saw groups form and split


def test_a_side_changed_in_place_saves_and_loads_what_it_searches(results, monkeypatch, tmp_path):
    monkeypatch.setattr(engine_module, "REFIT_BELOW", 10)
    engine = Engine.build(results[:150], None, LEXICAL, folder=tmp_path)
    queries = [Record(f"q{i}", r.title) for i, r in enumerate(results[150:160])]
    for step in range(3):  # each save after more writes: the lines kept from the save before must not go stale
        chunk = results[160 + 20 * step:180 + 20 * step]
        changed = Record(results[step].id, results[200 + step].title, results[200 + step].body)
        engine.apply("result", [*chunk, changed], deletes=[results[10 + step].id])
        engine.save()
        again = Engine.load(tmp_path, LEXICAL)
        assert engine.records("result") == again.records("result")
        for mine, theirs in zip(engine.results_for(queries, 5), again.results_for(queries, 5)):
            assert [(m.id, round(m.score, 6)) for m in mine] == [(m.id, round(m.score, 6)) for m in theirs]
