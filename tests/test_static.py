"""The static word-vector embedder distilled from e5-small: a tiny vocabulary, real e5, real FAISS, real CLI.

The vocabulary is the fixture world's own words (about 150, a second to encode), so the test is fast and
still shows the distilled model doing its job: each fixture need finds its obviously right result.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embeddings.factory import create_embedder
from embeddings.static import StaticEmbedder, StaticModelError, distil, jieba_vocabulary, load_static, save_static
from embeddings.tokenizer import get_tokenizer
from recommender.records import load_records
from recommender.settings import PipelineSettings
from tests.conftest import EXPECTED, FIXTURES


def fixture_words() -> dict[str, float]:
    """Every token of the fixture world and its count (characters too, for the out-of-vocabulary fallback)."""
    counts: dict[str, float] = {}
    for kind in ("need", "result"):
        for record in load_records(FIXTURES / f"{kind}s.jsonl", kind)[0]:
            for token in get_tokenizer().tokenize(record.text):
                counts[token] = counts.get(token, 0) + 1
                for char in token:
                    counts.setdefault(char, 1)
    return counts


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words, vectors, info = distil(create_embedder("e5-small"), fixture_words(), dim=64, progress=False)
    return save_static(tmp_path_factory.mktemp("static") / "model", words, vectors, info)


def test_distilled_vectors_load_and_embed_texts_by_their_words(model: Path):
    words, vectors, info = load_static(model)
    assert vectors.shape == (len(words), 64) and info["teacher"] == "e5-small" and info["dim"] == 64
    embedder = StaticEmbedder(model)
    texts = ["三元锂电池正极材料", "正极材料三元锂电池", "锂电池", "", "%%%"]
    out = embedder.embed_passages(texts)
    assert np.allclose(np.linalg.norm(out[:3], axis=1), 1.0, atol=1e-5)
    assert float(out[0] @ out[1]) == pytest.approx(1.0, abs=1e-5)  # a bag of words: order does not matter
    assert not out[3].any() and not out[4].any()  # nothing known: a zero vector, never NaN
    assert np.array_equal(embedder.embed_queries(texts[:2]), out[:2])  # one table for both roles
    assert embedder.token_rows("锂电正极") != []  # an unknown word counts as its known characters


def test_static_signal_finds_each_fixture_needs_result_and_saves_with_the_index(model: Path, tmp_path: Path):
    from recommender.pipeline import new_index, open_index

    settings = PipelineSettings(signals=["static"], static_model=model)
    index = new_index("result", settings)
    index.build(load_records(FIXTURES / "results.jsonl", "result")[0])
    needs = load_records(FIXTURES / "needs.jsonl", "need")[0]
    found = index.search([n.as_query() for n in needs], 2, explain=False)
    for need, matches in zip(needs, found):
        assert EXPECTED[need.id] in [m.id for m in matches], need.id
    index.save(tmp_path / "idx")
    again = open_index(tmp_path / "idx", "result", settings)
    assert list(again.signals) == ["static"]
    reloaded = again.search([n.as_query() for n in needs], 2, explain=False)
    assert [[m.id for m in ms] for ms in reloaded] == [[m.id for m in ms] for ms in found]


def test_a_damaged_or_missing_model_is_refused_with_what_to_do(model: Path, tmp_path: Path):
    with pytest.raises(StaticModelError, match="distil-static"):
        StaticEmbedder(tmp_path / "nothing")
    words, vectors, info = load_static(model)
    copy = save_static(tmp_path / "copy", words, vectors, info)
    vectors[0, 0] += 1.0
    np.save(copy / "vectors.npy", vectors)
    with pytest.raises(StaticModelError, match="checksum"):
        StaticEmbedder(copy)


def test_distil_static_command_builds_a_model_and_refuses_a_bad_words_file(tmp_path: Path):
    from techmatch.cli import app

    good = tmp_path / "words.txt"
    good.write_text("电池 120\n正极材料 3\n视觉检测\n", encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["distil-static", "--words", str(good), "--out", str(tmp_path / "m"), "--dim", "8"])
    assert done.exit_code == 0, done.output
    words, vectors, _ = load_static(tmp_path / "m")
    assert words == sorted(["电池", "正极材料", "视觉检测"]) and vectors.shape == (3, 3)  # PCA: at most n words
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["kind"] == "techmatch-static-embedding"
    bad = tmp_path / "bad.txt"
    bad.write_text("电池 many times\n", encoding="utf-8")
    failed = runner.invoke(app, ["distil-static", "--words", str(bad), "--out", str(tmp_path / "b")])
    assert failed.exit_code == 2 and "line 1: expected 'word'" in failed.stderr, failed.stderr


def test_vocabulary_is_the_commonest_dictionary_words_plus_the_corpus_words_and_their_characters():
    text = "钙钛矿太阳能电池界面钝化与柔性封装"
    words = jieba_vocabulary(40, [text])
    tokens = get_tokenizer().tokenize(text)
    assert tokens and all(t in words for t in tokens)
    assert all(c in words for t in tokens for c in t)  # the fallback of a word outside the vocabulary
    assert all(f > 0 for f in words.values()) and "的" not in words  # stop words are never emitted
