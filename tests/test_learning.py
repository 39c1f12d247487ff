"""Learning: the grader, the re-ranker, their artefacts, feedback as judgements and the install rule.

Real components throughout: the e5-small model, FAISS, bm25s, LightGBM, and the CLI in a subprocess, on
the hand-written fixture world (4 needs, 8 results; the obviously right result of each need is known).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.ann.base import IndexLoadError
from recommender.learning.feedback import FEEDBACK_GRADES, FeedbackError, feedback_to_qrels, read_feedback_file
from recommender.learning.grader import Grader
from recommender.learning.ranker import Reranker
from recommender.learning.training import grade_score, train_grader, train_reranker
from recommender.pipeline import new_index
from recommender.records import load_records
from tests.conftest import EXPECTED, FIXTURES

RELATED = {"N1": "R4"}  # a second, weaker match: another battery material for the battery need


def fixture_qrels() -> dict[str, dict[str, int]]:
    """Every pair judged: 3 for the obvious result, 1 for a related one, 0 for the rest."""
    results = [f"R{i}" for i in range(1, 9)]
    return {n: {r: 3 if r == EXPECTED[n] else 1 if RELATED.get(n) == r else 0 for r in results} for n in EXPECTED}


def write_qrels(qrels: dict[str, dict[str, int]], path: Path) -> Path:
    path.write_text("".join(f"{n} 0 {r} {g}\n" for n, row in qrels.items() for r, g in row.items()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def grader(fixture_index) -> Grader:
    index, needs = fixture_index
    return train_grader(index, needs, fixture_qrels(), seed=0)


def all_pairs(needs):
    queries = [n for n in needs for _ in range(8)]
    return queries, [f"R{i}" for _ in needs for i in range(1, 9)]


def test_grader_probabilities_are_distributions_and_rank_the_right_result_first(fixture_index, grader):
    index, needs = fixture_index
    queries, ids = all_pairs(needs)
    proba = grader.predict_proba(index, queries, ids)
    assert grader.levels == [0, 1, 3]
    assert proba.shape == (32, 3)
    assert np.allclose(proba.sum(1), 1.0) and (proba >= 0).all()
    expected = grader.expected_grade(index, queries, ids).reshape(4, 8)
    for row, need in zip(expected, needs):
        assert f"R{row.argmax() + 1}" == EXPECTED[need.id]
    grades = grader.predict_grade(index, queries, ids)
    assert set(grades) <= {0, 1, 3}
    truth = [fixture_qrels()[q.id][r] for q, r in zip(queries, ids)]
    assert grade_score(truth, grades) > grade_score(truth, [0] * len(truth))


def test_engine_grades_from_the_hits_its_search_found_exactly_as_a_fresh_search_would(fixture_index, grader):
    from recommender.engine import Engine
    from recommender.matcher import Matcher
    from recommender.records import free_text_need

    index, needs = fixture_index
    engine = Engine(Matcher(index, None, grader))
    queries = [*needs, free_text_need("冲压零件表面划痕裂纹的视觉自动检测")]
    for query, matches in zip(queries, engine.results_for(queries, 5)):
        expected = grader.predict_proba(index, [query] * len(matches), [m.id for m in matches])  # searches anew
        assert [m.grade for m in matches] == list(grader.grade_from_proba(expected))
        for m, row in zip(matches, expected):
            assert m.grade_probability == pytest.approx(float(row[grader.levels.index(m.grade)]), abs=1e-9)


def test_training_is_deterministic_for_a_seed(fixture_index, grader):
    index, needs = fixture_index
    again = train_grader(index, needs, fixture_qrels(), seed=0)
    assert [b.model_to_string() for b in again.boosters] == [b.model_to_string() for b in grader.boosters]
    queries, ids = all_pairs(needs)
    assert np.array_equal(again.predict_proba(index, queries, ids), grader.predict_proba(index, queries, ids))


def test_saved_grader_loads_and_predicts_the_same(fixture_index, grader, tmp_path: Path):
    index, needs = fixture_index
    grader.save(tmp_path / "grader")
    assert not list((tmp_path / "grader").glob("*.pkl"))
    loaded = Grader.load(tmp_path / "grader")
    queries, ids = all_pairs(needs)
    assert loaded.levels == grader.levels
    assert np.allclose(loaded.predict_proba(index, queries, ids), grader.predict_proba(index, queries, ids))


def test_tampered_or_foreign_artefact_is_refused(grader, tmp_path: Path):
    folder = grader.save(tmp_path / "grader")
    model = folder / "ge3.lgb.txt"
    model.write_text(model.read_text(encoding="utf-8").replace("num_leaves=", "num_leaves=9", 1), encoding="utf-8")
    with pytest.raises(IndexLoadError, match="checksum"):
        Grader.load(folder)
    folder = grader.save(tmp_path / "other")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, format_version=99)))
    with pytest.raises(IndexLoadError, match="version"):
        Grader.load(folder)
    with pytest.raises(IndexLoadError, match="missing"):
        Grader.load(tmp_path / "nowhere")


def test_grader_refuses_an_index_with_other_signals(grader):
    from recommender.settings import PipelineSettings

    results, _ = load_records(FIXTURES / "results.jsonl", "result")
    index = new_index("result", PipelineSettings(signals="bm25,char"))
    index.build(results)
    needs, _ = load_records(FIXTURES / "needs.jsonl", "need")
    with pytest.raises(IndexLoadError, match="signals"):
        grader.predict_proba(index, needs[:1], ["R1"])


def test_reranker_puts_the_right_result_first_and_round_trips(fixture_index, tmp_path: Path):
    index, needs = fixture_index
    reranker = train_reranker(index, needs, fixture_qrels(), seed=0, candidates=8)
    run = reranker.rerank_run(index, needs, {})
    for need in needs:
        best = max(run[need.id], key=run[need.id].get)
        assert best == EXPECTED[need.id]
    loaded = Reranker.load(reranker.save(tmp_path / "ranker"))
    assert loaded.rerank(index, needs, progress=False) == run


def test_feedback_rows_become_judgements_latest_outcome_wins(tmp_path: Path):
    rows = [
        {"need_id": "N1", "result_id": "R1", "outcome": "accepted", "created_at": "2024-05-01T10:00:00"},
        {"need_id": "N1", "result_id": "R1", "outcome": "signed", "created_at": "2024-06-01T10:00:00"},
        {"need_id": "N1", "result_id": "R2", "outcome": "contacted", "created_at": "2024-06-02T10:00:00"},
        {"need_id": "N1", "result_id": "R2", "outcome": "rejected", "created_at": "2024-06-03T10:00:00"},
        {"need_id": "N2", "result_id": "R3", "outcome": "Contacted", "created_at": "2024-06-01T09:00:00"},
        {"need_id": "N2", "result_id": "R3", "outcome": "accepted", "created_at": "2024-05-01T09:00:00"},
    ]
    assert feedback_to_qrels(rows) == {"N1": {"R1": 3, "R2": 0}, "N2": {"R3": FEEDBACK_GRADES["contacted"]}}
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(json.dumps(dict(r, note="")) for r in rows) + "\n", encoding="utf-8")
    assert feedback_to_qrels(read_feedback_file(path)) == feedback_to_qrels(rows)
    with pytest.raises(FeedbackError, match="unknown outcome 'liked'"):
        feedback_to_qrels([{"need_id": "N1", "result_id": "R1", "outcome": "liked"}])
    path.write_text(json.dumps(rows[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(FeedbackError, match="line 2"):
        read_feedback_file(path)


# -- the command line -------------------------------------------------------------------------------

def techmatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "techmatch", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_grade_command_follows_the_contract(tmp_path: Path):
    qrels = fixture_qrels()
    train = {n: qrels[n] for n in ("N1", "N2", "N3")}  # learn from three needs, grade the fourth's pairs
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"N4\tR{i}\n" for i in range(1, 9)), encoding="utf-8")
    out = tmp_path / "graded.tsv"
    proc = techmatch("grade", "--train-needs", str(FIXTURES / "needs.jsonl"), "--train-qrels",
                     str(write_qrels(train, tmp_path / "q.txt")), "--needs", str(FIXTURES / "needs.jsonl"),
                     "--results", str(FIXTURES / "results.jsonl"), "--pairs", str(pairs), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(n, r) for n, r, _ in lines] == [("N4", f"R{i}") for i in range(1, 9)]
    assert all(g in {"0", "1", "3"} for _, _, g in lines)
    pairs.write_text("N4 R1 extra\n", encoding="utf-8")
    proc = techmatch("grade", "--train-needs", str(FIXTURES / "needs.jsonl"), "--train-qrels",
                     str(tmp_path / "q.txt"), "--needs", str(FIXTURES / "needs.jsonl"),
                     "--results", str(FIXTURES / "results.jsonl"), "--pairs", str(pairs), "--out", str(out))
    assert proc.returncode == 2 and "line 1" in proc.stderr and "Traceback" not in proc.stderr


def test_train_installs_then_refuses_a_worse_grader_and_matches_carry_grades(tmp_path: Path):
    from recommender.engine import Engine
    from recommender.matcher import Matcher

    index_dir = tmp_path / "index"
    needs, _ = load_records(FIXTURES / "needs.jsonl", "need")
    results, _ = load_records(FIXTURES / "results.jsonl", "result")
    Matcher.build(results, needs).save(index_dir)
    qrels_path = write_qrels(fixture_qrels(), tmp_path / "q.txt")
    proc = techmatch("train", "--index", str(index_dir), "--qrels", str(qrels_path), "--holdout", "0.25", "--json")
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout.strip().splitlines()[-1])
    assert first["installed"] and first["before"] is None and first["held_back_needs"] == 1
    manifest = (index_dir / "grader" / "manifest.json").read_text()

    # Feedback that contradicts the judgements on the training needs: the retrained grader learns the
    # opposite, scores worse on the (unchanged) held-back needs, and must not replace the installed one.
    from sklearn.model_selection import GroupShuffleSplit

    need_ids = np.asarray(sorted(EXPECTED))
    train_idx, _ = next(GroupShuffleSplit(1, test_size=0.25, random_state=0).split(need_ids, groups=need_ids))
    rows = [{"need_id": n, "result_id": r, "outcome": "rejected" if g == 3 else "signed",
             "created_at": "2024-06-01T00:00:00"}
            for n in need_ids[train_idx] for r, g in fixture_qrels()[n].items()]
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    proc = techmatch("train", "--index", str(index_dir), "--qrels", str(qrels_path), "--feedback", str(feedback),
                     "--holdout", "0.25", "--json")
    assert proc.returncode == 0, proc.stderr
    second = json.loads(proc.stdout.strip().splitlines()[-1])
    assert second["feedback_rows"] == len(rows)
    assert second["after"] < second["before"] and not second["installed"]
    assert (index_dir / "grader" / "manifest.json").read_text() == manifest

    proc = techmatch("match", "--index", str(index_dir), "--text", "冲压零件表面划痕裂纹的视觉自动检测", "--json")
    assert proc.returncode == 0, proc.stderr
    matches = json.loads(proc.stdout.strip().splitlines()[-1])["matches"]
    assert matches[0]["id"] == "R3" and matches[0]["grade"] == 3
    assert all(m["grade"] in (0, 1, 3) and 0 < m["grade_probability"] <= 1 for m in matches)

    engine = Engine.load(index_dir)  # the other direction: needs (enterprises) for a result
    assert engine.grader is not None
    matches = engine.needs_for([engine.record("result", "R1")], 4)[0]
    assert matches[0].id == "N1" and matches[0].grade == 3 and matches[0].to_dict("need")["grade"] == 3

    (index_dir / "grader" / "info.json").write_text("{}", encoding="utf-8")
    with pytest.raises(IndexLoadError, match="checksum"):
        Matcher.load(index_dir)


def test_learned_triage_strength_keeps_the_rank_and_puts_the_market_on_one_scale(fixture_index, grader):
    """Issue 12: the default blend is half the zero-shot rank strength, half P(grade 3) over the market's best."""
    from recommender.triage import weights as W
    from recommender.triage.market import market_pull, rank_candidates, rank_strengths

    index, needs = fixture_index
    zero = rank_candidates(index, needs, depth=8, progress=False)
    rank_strengths(zero)
    rank = {(c.need_id, c.result_id): c.strength for cands in zero.values() for c in cands}
    for blend in ("rank_and_market", "per_need"):
        market = market_pull(index, needs, grader=grader, depth=8, progress=False, learned_blend=blend)
        strengths = {(c.need_id, c.result_id): c.strength for cands in market.wanted_by.values() for c in cands}
        assert set(strengths) == set(rank) and all(0 <= s <= 1 for s in strengths.values())
        for need in needs:
            mine = {r: s for (n, r), s in strengths.items() if n == need.id}
            assert max(mine, key=mine.get) == EXPECTED[need.id]  # budgets are absent: factor 0.85 for every need
        if blend == "rank_and_market":
            excess = [s / 0.85 - W.LEARNED_RANK_SHARE * rank[pair] for pair, s in strengths.items()]
            assert min(excess) >= -1e-9 and max(excess) == pytest.approx(1 - W.LEARNED_RANK_SHARE)
    with pytest.raises(ValueError, match="unknown blend"):
        market_pull(index, needs, grader=grader, progress=False, learned_blend="absolute")
