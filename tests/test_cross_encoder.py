"""The cross-encoder (issue 12 item 3): real e5 weights, real training on the fixture fixture_index, kept tiny.

One transformer layer learns for a few epochs on 32 pairs, so each training takes seconds; what is checked
is behaviour, not quality (quality is eval/benchmarks/CROSS_ENCODER.md): probabilities are monotone
distributions, training lowers the loss on what it saw, a stopped training resumes to exactly the weights
of an unbroken one, the grader stacks it and its artefact round-trips, refuses damage, and the plain grader
kept beside it is what the service uses by default.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recommender.learning.artefact import ArtefactError
from recommender.learning.cross_encoder import (
    CROSS_ENCODER_FILE,
    CrossEncoderConfig,
    CrossEncoderError,
    fit_cross_encoder,
)
from recommender.learning.grader import Grader
from recommender.learning.training import train_grader
from tests.conftest import FIXTURES
from tests.test_learning import fixture_qrels

TINY = CrossEncoderConfig(tokens=32, train_layers=1, epochs=10, batch=8, lr=1e-3, head_lr=1e-2)
STACK = CrossEncoderConfig(tokens=32, train_layers=1, epochs=2, batch=8)  # 5 trainings: kept shortest


@pytest.fixture(scope="module")
def pairs(fixture_index):
    index, needs = fixture_index
    results = [index.records[f"R{i}"] for i in range(1, 9)]
    qrels = fixture_qrels()
    rows = [(n, r, qrels[n.id][r.id]) for n in needs for r in results]
    return [n for n, _, _ in rows], [r for _, r, _ in rows], np.array([g for _, _, g in rows])


def _loss(cumulative: np.ndarray, grades: np.ndarray, levels: list[int]) -> float:
    targets = np.stack([grades >= level for level in levels[1:]], axis=1)
    p = np.clip(cumulative, 1e-6, 1 - 1e-6)
    return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())


def test_training_learns_the_pairs_and_gives_monotone_probabilities(pairs):
    needs, results, grades = pairs
    untrained = fit_cross_encoder(needs, results, grades, config=TINY, progress=False, stop_after_epochs=0)
    trained = fit_cross_encoder(needs, results, grades, config=TINY, progress=False)
    before, after = untrained.cumulative(needs, results), trained.cumulative(needs, results)
    assert after.shape == (32, 2) and trained.names == ["cross_encoder_ge1", "cross_encoder_ge3"]
    assert ((after >= 0) & (after <= 1)).all() and (np.diff(after, axis=1) <= 0).all()  # P(>=1) >= P(>=3)
    assert _loss(after, grades, trained.levels) < _loss(before, grades, trained.levels)
    # the pairs judged 3 score above the pairs judged 0 once trained
    assert after[grades == 3, 1].mean() > after[grades == 0, 1].mean()


def test_a_stopped_training_resumes_to_the_weights_of_an_unbroken_one(pairs, tmp_path: Path):
    needs, results, grades = pairs
    unbroken = fit_cross_encoder(needs, results, grades, config=TINY, progress=False)
    first = fit_cross_encoder(needs, results, grades, config=TINY, checkpoint=tmp_path, progress=False,
                              stop_after_epochs=1)
    assert json.loads((tmp_path / "progress.json").read_text())["epochs"] == 1
    resumed = fit_cross_encoder(needs, results, grades, config=TINY, checkpoint=tmp_path, progress=False)
    assert json.loads((tmp_path / "progress.json").read_text())["epochs"] == TINY.epochs
    expected = unbroken.cumulative(needs, results)
    assert np.allclose(resumed.cumulative(needs, results), expected, atol=1e-5)
    assert not np.allclose(first.cumulative(needs, results), expected, atol=1e-3)  # one epoch is not three
    # another run's checkpoint (other settings) is ignored, not mixed in
    other = CrossEncoderConfig(**{**TINY.__dict__, "seed": 1})
    fresh = fit_cross_encoder(needs, results, grades, config=other, checkpoint=tmp_path, progress=False,
                              stop_after_epochs=0)
    assert not np.allclose(fresh.cumulative(needs, results), expected, atol=1e-3)


def test_bad_settings_and_single_grades_are_refused(pairs):
    needs, results, grades = pairs
    with pytest.raises(CrossEncoderError, match="train_layers"):
        fit_cross_encoder(needs, results, grades, config=CrossEncoderConfig(train_layers=0))
    with pytest.raises(CrossEncoderError, match="two grades"):
        fit_cross_encoder(needs, results, np.zeros(len(grades), dtype=int), config=TINY)


@pytest.fixture(scope="module")
def stacked(fixture_index, tmp_path_factory) -> Grader:
    index, needs = fixture_index
    return train_grader(index, needs, fixture_qrels(), cross_encoder=STACK,
                        work=tmp_path_factory.mktemp("ce-work"), progress=False)


def test_the_grader_stacks_the_cross_encoder_and_keeps_a_plain_twin(fixture_index, stacked):
    index, needs = fixture_index
    assert stacked.cross_encoder is not None and stacked.plain is not None
    assert stacked.feature_names[-2:] == ["cross_encoder_ge1", "cross_encoder_ge3"]
    assert stacked.plain.feature_names == stacked.base_feature_names
    queries, ids = [n for n in needs for _ in range(8)], [f"R{i}" for _ in needs for i in range(1, 9)]
    with_ce = stacked.predict_proba(index, queries, ids)
    assert np.allclose(with_ce.sum(1), 1.0)
    stacked.use_cross_encoder = False
    try:
        assert np.allclose(stacked.predict_proba(index, queries, ids), stacked.plain.predict_proba(index, queries, ids))
    finally:
        stacked.use_cross_encoder = True


def test_the_stacked_grader_round_trips_and_refuses_damaged_weights(fixture_index, stacked, tmp_path: Path):
    index, needs = fixture_index
    folder = stacked.save(tmp_path / "grader")
    assert (folder / CROSS_ENCODER_FILE).is_file()
    loaded = Grader.load(folder)
    queries, ids = [needs[0]] * 8, [f"R{i}" for i in range(1, 9)]
    assert np.allclose(loaded.predict_proba(index, queries, ids), stacked.predict_proba(index, queries, ids))
    assert loaded.cross_encoder.config == STACK
    data = bytearray((folder / CROSS_ENCODER_FILE).read_bytes())
    data[-1] ^= 1
    (folder / CROSS_ENCODER_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="checksum"):
        Grader.load(folder)


def test_grade_with_the_cross_encoder_end_to_end_and_a_rerun_reuses_its_work(tmp_path: Path):
    from typer.testing import CliRunner

    from techmatch.cli import app
    from tests.test_learning import write_qrels

    qrels = write_qrels(fixture_qrels(), tmp_path / "qrels.txt")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"N{n}\tR{r}\n" for n in range(1, 5) for r in range(1, 9)), encoding="utf-8")
    work = tmp_path / "work"

    def grade(out: str, saved: str) -> str:
        args = ["grade", "--train-needs", str(FIXTURES / "needs.jsonl"), "--train-qrels", str(qrels),
                "--needs", str(FIXTURES / "needs.jsonl"), "--results", str(FIXTURES / "results.jsonl"),
                "--pairs", str(pairs), "--out", str(tmp_path / out), "--with-probability", "--cross-encoder",
                "--cross-encoder-epochs", "2", "--cross-encoder-layers", "1", "--work", str(work),
                "--save-grader", str(tmp_path / saved)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return (tmp_path / out).read_text(encoding="utf-8")

    first = grade("first.tsv", "grader1")
    lines = first.splitlines()
    assert len(lines) == 32 and all(len(line.split("\t")) == 4 for line in lines)
    folds = sorted(p.name for p in work.iterdir())
    assert folds == ["final", "fold1", "fold2", "fold3", "fold4"]  # 4 needs: one need per fold
    assert json.loads((work / "final" / "progress.json").read_text())["epochs"] == 2
    stamps = {p: p.stat().st_mtime_ns for p in work.glob("fold*/held.npy")}
    assert Grader.load(tmp_path / "grader1").cross_encoder is not None
    assert grade("second.tsv", "grader2") == first  # resumed from the work folder: the same grades
    assert {p: p.stat().st_mtime_ns for p in work.glob("fold*/held.npy")} == stamps  # and nothing retrained


def test_the_service_grades_with_the_plain_twin_unless_told_otherwise(fixture_index, stacked, tmp_path: Path):
    from recommender.matcher import Matcher
    from recommender.settings import PipelineSettings
    from service.core.sync import IndexSync

    index, _ = fixture_index
    for serve, expected in ((False, False), (True, True)):
        sync = IndexSync(tmp_path / f"index-{serve}", PipelineSettings(serve_cross_encoder=serve))
        sync.engine.matcher = Matcher(index, None, stacked)
        sync._grader_mode()
        assert stacked.use_cross_encoder is expected
    stacked.use_cross_encoder = True


def test_the_reranker_reads_the_cross_encoder_on_its_top_candidates_and_round_trips(fixture_index, tmp_path: Path):
    from recommender.learning.ranker import Reranker
    from recommender.learning.training import train_reranker

    index, needs = fixture_index
    ranker = train_reranker(index, needs, fixture_qrels(), candidates=8, cross_encoder=STACK,
                            work=tmp_path / "work", progress=False, cross_encoder_candidates=3)
    assert ranker.cross_encoder is not None and ranker.feature_names[-2:] == ranker.cross_encoder.names
    run = ranker.rerank(index, needs, progress=False)
    assert set(run) == {n.id for n in needs} and all(len(scores) == 8 for scores in run.values())
    loaded = Reranker.load(ranker.save(tmp_path / "ranker"))
    assert loaded.cross_encoder_candidates == 3
    assert loaded.rerank(index, needs, progress=False) == run
    # whatever blend weight was chosen, the model's input carries the cross-encoder on the top 3 only
    from recommender.learning.ranker import with_cross_encoder_columns

    ids = [m.id for m in index.search([needs[0].as_query()], 8, explain=False)[0]]
    base = loaded.featurizer(index).transform([needs[0]] * len(ids), ids)
    features = with_cross_encoder_columns(base, loaded.cross_encoder, needs[0], [index.records[r] for r in ids], 3)
    assert features.shape == (8, len(loaded.feature_names))
    assert not np.isnan(features[:3, -2:]).any() and np.isnan(features[3:, -2:]).all()
    assert np.isfinite(loaded.score_features(features)).all()
