"""Choose an ANN backend by name, and load whichever one a folder holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recommender.ann.base import ANNIndex, read_manifest
from recommender.ann.faiss_index import FaissIndex

BACKENDS = ("flat", "hnsw", "ivf")


def create_ann(backend: str, dim: int, model: str, **options: Any) -> ANNIndex:
    """A new, empty index: 'flat' (exact, the default), 'hnsw' or 'ivf' (approximate, for large corpora)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown ANN backend '{backend}' (use one of: {', '.join(BACKENDS)})")
    return FaissIndex(dim, model, backend, **options)


def load_ann(folder: str | Path, model: str | None = None) -> ANNIndex:
    """Load a saved index, refusing one built with another model or damaged since it was saved."""
    folder = Path(folder)
    info = read_manifest(folder, "ann", model)
    return FaissIndex.load(folder, info)
