"""ANN backends by name: create a new index, or load whichever backend a saved folder's manifest names.

A new backend is one file (a class implementing ``recommender.ann.base.ANNIndex``) and one line in
``BACKENDS``; its module is imported only when the backend is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from recommender.ann.base import ANNIndex, IndexLoadError, read_manifest


def _faiss() -> type[ANNIndex]:
    from recommender.ann.faiss_index import FaissIndex

    return FaissIndex


# name -> the class that implements it; the class is constructed as cls(dim, model, name, **options)
BACKENDS: dict[str, Callable[[], type[ANNIndex]]] = {
    "flat": _faiss,  # exact inner product (the default)
    "hnsw": _faiss,  # approximate: graph, for large corpora
    "ivf": _faiss,  # approximate: inverted lists, for very large corpora
}


def backend_class(name: str) -> type[ANNIndex]:
    if name not in BACKENDS:
        raise ValueError(f"unknown ANN backend '{name}' (use one of: {', '.join(BACKENDS)})")
    return BACKENDS[name]()


def create_ann(backend: str, dim: int, model: str, **options: Any) -> ANNIndex:
    """A new, empty index of the named backend."""
    return backend_class(backend)(dim, model, backend, **options)  # type: ignore[call-arg]


def load_ann(folder: str | Path, model: str | None = None) -> ANNIndex:
    """Load a saved index with the backend its manifest names, refusing one built with another model or
    damaged since it was saved."""
    folder = Path(folder)
    info = read_manifest(folder, "ann", model)
    backend = str(info.get("backend", "flat"))
    if backend not in BACKENDS:
        raise IndexLoadError(f"{folder}: built with the ANN backend '{backend}', which this techmatch does not have "
                             f"(it has {', '.join(BACKENDS)})")
    return backend_class(backend).load(folder, info)
