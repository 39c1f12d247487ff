"""ANN backends by name: create a new index, or load whichever backend a saved folder's manifest names.

A new backend is one file (a class implementing ``recommender.ann.base.ANNIndex``) and one line in
``BACKENDS``; its module is imported only when the backend is used (pymilvus alone takes ~1 s to import).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from recommender.ann.base import ANNIndex, IndexLoadError, read_manifest


def _faiss(dim: int, model: str, backend: str, **options: Any) -> ANNIndex:
    from recommender.ann.faiss_index import FaissIndex

    return FaissIndex(dim, model, backend, **options)


def _milvus(dim: int, model: str, backend: str, **options: Any) -> ANNIndex:
    from recommender.ann.milvus_index import MilvusIndex

    return MilvusIndex(dim, model, **options)


def _pgvector(dim: int, model: str, backend: str, **options: Any) -> ANNIndex:
    from recommender.ann.pgvector_index import PgVectorIndex

    return PgVectorIndex(dim, model, **options)


def _pgvector_class() -> type[ANNIndex]:
    from recommender.ann.pgvector_index import PgVectorIndex

    return PgVectorIndex


def _faiss_class() -> type[ANNIndex]:
    from recommender.ann.faiss_index import FaissIndex

    return FaissIndex


def _milvus_class() -> type[ANNIndex]:
    from recommender.ann.milvus_index import MilvusIndex

    return MilvusIndex


# name -> (a new index of it, the class that loads a saved one)
BACKENDS: dict[str, tuple[Callable[..., ANNIndex], Callable[[], type[ANNIndex]]]] = {
    "flat": (_faiss, _faiss_class),  # FAISS in the process, exact inner product (the default)
    "hnsw": (_faiss, _faiss_class),  # FAISS, approximate: graph, for large corpora
    "ivf": (_faiss, _faiss_class),  # FAISS, approximate: inverted lists, for very large corpora
    "milvus": (_milvus, _milvus_class),  # a Milvus Lite file or a Milvus server (MilvusIndex's options)
    "pgvector": (_pgvector, _pgvector_class),  # a table of the service's PostgreSQL database, HNSW (pgvector)
}
NEEDS_OPTIONS_TO_LOAD = ("pgvector",)  # saved folders that name a table: the database URL comes from the settings
FAISS_BACKENDS = ("flat", "hnsw", "ivf")


def create_ann(backend: str, dim: int, model: str, **options: Any) -> ANNIndex:
    """A new, empty index of the named backend."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown ANN backend '{backend}' (use one of: {', '.join(BACKENDS)})")
    return BACKENDS[backend][0](dim, model, backend, **options)


def load_ann(folder: str | Path, model: str | None = None, options: dict[str, Any] | None = None) -> ANNIndex:
    """Load a saved index with the backend its manifest names, refusing one built with another model or
    damaged since it was saved (``options``: the settings' options, for a backend that reconnects with them)."""
    folder = Path(folder)
    info = read_manifest(folder, "ann", model)
    backend = str(info.get("backend", "flat"))
    if backend not in BACKENDS:
        raise IndexLoadError(f"{folder}: built with the ANN backend '{backend}', which this techmatch does not have "
                             f"(it has {', '.join(BACKENDS)})")
    if backend in NEEDS_OPTIONS_TO_LOAD:
        return BACKENDS[backend][1]().load(folder, info, **(options or {}))  # type: ignore[call-arg]
    return BACKENDS[backend][1]().load(folder, info)
