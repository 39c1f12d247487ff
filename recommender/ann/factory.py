"""Choose an ANN backend by name, and load whichever one a folder holds (its manifest names the backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recommender.ann.base import ANNIndex, read_manifest
from recommender.ann.faiss_index import FaissIndex

FAISS_BACKENDS = ("flat", "hnsw", "ivf")
BACKENDS = (*FAISS_BACKENDS, "milvus")


def create_ann(backend: str, dim: int, model: str, **options: Any) -> ANNIndex:
    """A new, empty index: 'flat' (exact, the default), 'hnsw' or 'ivf' (approximate, for large corpora), all
    FAISS in this process; or 'milvus' (a Milvus Lite file or a Milvus server: ``MilvusIndex``'s options)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown ANN backend '{backend}' (use one of: {', '.join(BACKENDS)})")
    if backend == "milvus":
        from recommender.ann.milvus_index import MilvusIndex  # pymilvus takes ~1 s to import: only when used

        return MilvusIndex(dim, model, **options)
    return FaissIndex(dim, model, backend, **options)


def load_ann(folder: str | Path, model: str | None = None) -> ANNIndex:
    """Load a saved index, refusing one built with another model or damaged since it was saved."""
    folder = Path(folder)
    info = read_manifest(folder, "ann", model)
    if info.get("backend") == "milvus":
        from recommender.ann.milvus_index import MilvusIndex

        return MilvusIndex.load(folder, info)
    return FaissIndex.load(folder, info)
