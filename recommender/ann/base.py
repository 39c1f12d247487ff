"""The interface every ANN backend implements, and the manifest that guards saved indexes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import manifest
from embeddings.manifest import MANIFEST, file_sha256
from recommender.errors import TechmatchError
from recommender.filters import Metadata, ResultFilters

FORMAT_VERSION = 1
__all__ = ["MANIFEST", "file_sha256"]  # re-exported: the index folders' manifest is embeddings.manifest's


class IndexLoadError(TechmatchError, RuntimeError):
    """A saved index that must not be used: missing, damaged, another format, or built with another model."""


class VectorDatabaseError(TechmatchError, RuntimeError):
    """A vector database (Milvus) that cannot be reached or opened, or that refused a request: says which and why."""


def write_manifest(folder: Path, info: dict[str, Any], files: Sequence[str]) -> None:
    """Record what the folder holds and each file's checksum, so damage is caught at load time."""
    manifest.write_manifest(folder, dict(info, format_version=FORMAT_VERSION), files, indent=2)


def read_manifest(folder: Path, expected_kind: str, model: str | None = None) -> dict[str, Any]:
    """Read and verify a manifest; refuse other formats, other models and changed files."""
    info = manifest.read_manifest(folder, expected_kind, FORMAT_VERSION, IndexLoadError, "index",
                                  "rebuild it with 'techmatch index'")
    if model is not None and info.get("model") != model:
        raise IndexLoadError(
            f"{folder}: index was built with model '{info.get('model')}', not '{model}'; "
            "rebuild it with that model or load it with the model it was built with"
        )
    return info


class ANNIndex(ABC):
    """Dense vectors with string ids; inner-product scores (vectors are L2-normalised: cosine).

    Optional per-vector ``metadata`` (the values of ``recommender.filters.filter_values``) and an optional
    ``filters`` on search let a backend filter inside the index. Where it cannot (``filters_pushdown`` is
    False: the FAISS backends), it accepts and ignores both, and the caller filters the hits it gets.
    """

    backend: str
    filters_pushdown: bool = False  # True: search(..., filters=f) returns only vectors whose metadata f accepts
    shared: bool = False  # True: the vectors live outside this process (a database several processes share)
    managed: bool = False  # True: the caller writes the vectors (in its own transactions); index/append/delete skip

    def __init__(self, dim: int, model: str) -> None:
        self.dim = dim
        self.model = model

    @abstractmethod
    def index(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        """Replace the contents with these vectors."""

    @abstractmethod
    def append(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        """Add vectors; an id already present is replaced (update without a rebuild)."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, filters: ResultFilters | None = None
    ) -> list[list[tuple[str, float]]]:
        """Top-k (id, score) per query row, best first (among those ``filters`` accepts, if pushed down)."""

    @abstractmethod
    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of these ids (for exact scores of any candidate); unknown ids raise KeyError."""

    def present(self, ids: Sequence[str]) -> list[str]:
        """The given ids that are stored, in the given order (one round trip for a remote backend)."""
        return [i for i in ids if i in self]

    @abstractmethod
    def save(self, folder: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, info: dict[str, Any]) -> ANNIndex: ...

    @property
    @abstractmethod
    def ids(self) -> list[str]: ...

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in set(self.ids)
