"""The scale benchmark's reusable parts on a few generated records: LSA embedder, IVF vs exact recall, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.synthetic import iter_results
from eval.benchmarks.lsa import LsaEmbedder, NotFittedError
from eval.benchmarks.scale import part_large, recall_at_k, recall_at_k_ties, set_nprobe, write_report
from recommender.ann import create_ann


@pytest.fixture(scope="module")
def titles() -> list[str]:
    return [r["title"] for r in iter_results(7, 500)]


def test_lsa_embeds_generated_titles(titles: list[str]):
    embedder = LsaEmbedder(dim=64)
    with pytest.raises(NotFittedError):
        embedder.embed_passages(titles[:3])
    with pytest.raises(ValueError, match="more than 64 texts"):
        LsaEmbedder(dim=64).fit(titles[:10])
    vectors = embedder.fit(titles).embed_passages(titles)
    assert vectors.shape == (500, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # a title is its own nearest neighbour, and texts sharing words are closer than unrelated ones
    assert (np.argmax(vectors @ vectors.T, axis=1) == np.arange(500)).mean() > 0.95
    q = embedder.embed_queries(["锂电池正极材料", "污水处理脱氮"])
    assert q @ embedder.embed_passages(["一种锂电池正极材料的制备方法"])[0] @ np.array([1, -1]) > 0


def test_ivf_recall_against_exact(titles: list[str]):
    vectors = LsaEmbedder(dim=64).fit(titles).embed_passages(titles)
    ids = [f"r{i}" for i in range(len(titles))]
    exact = create_ann("flat", 64, "lsa")
    exact.index(ids, vectors)
    ivf = create_ann("ivf", 64, "lsa", nlist=10, nprobe=1)
    ivf.index(ids, vectors)
    queries = vectors[:50] + 0.05 * np.random.default_rng(0).standard_normal((50, 64)).astype(np.float32)
    truth = exact.search(queries, 10)
    set_nprobe(ivf, 1)
    one_probe = recall_at_k(ivf.search(queries, 10), truth)
    set_nprobe(ivf, 10)  # every list probed: IVF-Flat is exact
    assert recall_at_k(ivf.search(queries, 10), truth) == pytest.approx(1.0)
    assert 0.0 < one_probe < 1.0
    with pytest.raises(ValueError):
        recall_at_k(truth[:3], truth)


def test_recall_counting_ties():
    exact = [[("a", 1.0), ("b", 0.9), ("c", 0.9)]]
    other_tie = [[("a", 1.0), ("c", 0.9)]]  # as near as the exact 2nd: right, though not the same id
    assert recall_at_k(other_tie, exact, 2) == 0.5 and recall_at_k_ties(other_tie, exact, 2) == 1.0
    assert recall_at_k_ties([[("a", 1.0), ("d", 0.5)]], exact, 2) == 0.5


def test_large_part_end_to_end_small(tmp_path: Path):
    figures = part_large(n=3000, n_queries=40, n_tune=40, nlist=16, fit_sample=1000, seed=7, milvus="IVF_FLAT",
                         milvus_nlist=8, milvus_uri=tmp_path / "milvus.db", milvus_latency_queries=5)
    assert figures["results"] == 3000 and figures["queries"] == 40
    assert 0.0 <= figures["recall@10"] <= 1.0
    assert figures["nprobe"] in {s["nprobe"] for s in figures["nprobe_sweep"]} and figures["nprobe"] <= 16
    assert figures["ivf_latency_ms"]["p50"] > 0
    report = tmp_path / "SCALE.md"
    write_report(report, None, figures, {"cpu": "x", "cores": 2, "ram_gb": 1, "python": "3", "load_avg": [0]},
                 ["python -m eval.benchmarks.scale"], "today")
    text = report.read_text(encoding="utf-8")
    assert "IVF recall@10 vs exact (40 queries)" in text and f"{figures['recall@10']:.4f}" in text
    milvus = figures["milvus"]  # the Milvus backend on the same vectors, tuned on the tuning queries
    assert milvus["search_param"] == "nprobe", milvus
    assert milvus["search_value"] in {s["nprobe"] for s in milvus["sweep"]}, milvus
    assert 0.5 <= milvus["recall@10"] <= milvus["recall@10_ties"] <= 1.0, milvus
    assert milvus["latency_queries"] == 5, milvus
    assert "the Milvus backend (a Milvus Lite file, IVF_FLAT) beside FAISS IVF" in text
    assert f"| {milvus['recall@10']:.4f} " in text
