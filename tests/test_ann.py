"""FAISS index with string ids: round trips, in-place changes, and refusal of the wrong or damaged index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.ann import IndexLoadError, create_ann, load_ann


def unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("backend", ["flat", "hnsw", "ivf"])
def test_search_add_update_delete_save_load(tmp_path: Path, backend: str):
    rng = np.random.default_rng(0)
    vectors = unit(rng, 200)
    ids = [f"doc-{i}" for i in range(200)]
    index = create_ann(backend, 16, "test-model", **({"nlist": 4, "nprobe": 4} if backend == "ivf" else {}))
    index.index(ids, vectors)
    assert index.search(vectors[:3], 1) == [[(ids[i], pytest.approx(1.0, abs=1e-4))] for i in range(3)]

    new = unit(rng, 1)
    index.append(["doc-5"], new)  # update in place
    assert len(index) == 200
    assert index.search(new, 1)[0][0][0] == "doc-5"
    assert index.delete(["doc-7", "unknown"]) == 1
    assert all(hit[0] != "doc-7" for hit in index.search(vectors[7:8], 10)[0])
    index.append(["fresh"], vectors[7:8])
    assert index.search(vectors[7:8], 1)[0][0][0] == "fresh"

    index.save(tmp_path / "ann")
    loaded = load_ann(tmp_path / "ann", model="test-model")
    assert len(loaded) == 200 and "doc-7" not in loaded and "fresh" in loaded
    assert loaded.search(vectors[:20], 5) == index.search(vectors[:20], 5)
    np.testing.assert_allclose(loaded.vectors(["doc-5"]), new, atol=1e-6)


def test_other_model_is_refused(tmp_path: Path):
    index = create_ann("flat", 8, "model-a")
    index.index(["a"], np.ones((1, 8), dtype=np.float32))
    index.save(tmp_path / "ann")
    with pytest.raises(IndexLoadError, match="built with model 'model-a', not 'model-b'"):
        load_ann(tmp_path / "ann", model="model-b")


def test_damaged_index_is_refused(tmp_path: Path):
    index = create_ann("flat", 8, "m")
    index.index(["a", "b"], np.eye(2, 8, dtype=np.float32))
    index.save(tmp_path / "ann")
    data = (tmp_path / "ann" / "vectors.faiss").read_bytes()
    (tmp_path / "ann" / "vectors.faiss").write_bytes(data[:-10])
    with pytest.raises(IndexLoadError, match="damaged"):
        load_ann(tmp_path / "ann")
    with pytest.raises(IndexLoadError, match="not an index folder"):
        load_ann(tmp_path)


def test_wrong_dimension_is_rejected():
    index = create_ann("flat", 8, "m")
    with pytest.raises(ValueError, match="dimension 8"):
        index.index(["a"], np.ones((1, 4), dtype=np.float32))
