"""The dense signal answers searches from several threads at once (the service batches them in parallel)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from embeddings.factory import create_embedder
from recommender.dense import DenseSignal
from recommender.signal import Texts


def test_query_vectors_stay_right_while_other_searches_start_the_memory_afresh(monkeypatch):
    """Searches in parallel threads, a memory of two texts: each answer is its own queries' vectors (a shared
    memory cleared by one thread between another's write and read lost them: a KeyError, a 500 under load)."""
    monkeypatch.setattr(DenseSignal, "QUERY_MEMORY", 2)
    signal = DenseSignal(create_embedder("e5-small"))
    texts = [f"第{i}种复合材料的制备方法与性能测试" for i in range(24)]
    expected = create_embedder("e5-small").embed_queries(texts)

    def ask(i: int) -> np.ndarray:
        group = [texts[(i + j) % len(texts)] for j in range(3)]
        return signal.embed_queries([Texts(t, t) for t in group]), [(i + j) % len(texts) for j in range(3)]

    with ThreadPoolExecutor(8) as pool:
        for got, rows in pool.map(ask, range(96)):
            np.testing.assert_allclose(got, expected[rows], atol=1e-5)
