"""FAISS backends: exact inner product (default), HNSW and IVF for large corpora."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from recommender.ann.base import ANNIndex, IndexLoadError, write_manifest
from recommender.filters import Metadata, ResultFilters

INDEX_FILE = "vectors.faiss"
IDS_FILE = "ids.json"
# One query is split across OpenMP threads that mostly wait for each other: at 30,000 vectors it took
# 2.7 ms wall and 5.3 ms CPU on 2 cores, against 1.5 ms on one thread. The setting is per calling thread,
# so concurrent service threads each pick their own; batches of queries keep every thread.
_THREADS = faiss.omp_get_max_threads()
# Batches of 2-19 queries (the service's micro-batches) take FAISS's BLAS path too, as 20 or more always
# do: one pass over the vectors for the whole batch instead of one per query (30,000 vectors, 8 queries:
# 16 -> 11 ms). Process-wide, and only FAISS reads it.
faiss.cvar.distance_compute_blas_threshold = 2


class FaissIndex(ANNIndex):
    """String ids mapped to int64 FAISS ids; HNSW (which cannot remove) uses tombstones and over-fetch.

    Metadata and filters are accepted and ignored (``filters_pushdown`` is False): the hybrid index
    filters FAISS's candidates itself, searching deeper when a filter is set.
    """

    def __init__(
        self, dim: int, model: str, backend: str = "flat", hnsw_m: int = 32, ef_search: int = 128,
        nlist: int | None = None, nprobe: int = 32,
    ) -> None:
        super().__init__(dim, model)
        self.backend = backend
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.nlist = nlist
        self.nprobe = nprobe
        self._index: Any = None
        self._to_int: dict[str, int] = {}
        self._to_str: dict[int, str] = {}
        self._dead: set[int] = set()  # HNSW tombstones
        self._next = 0

    # -- construction -------------------------------------------------------------------------
    def _new_index(self, train: np.ndarray | None) -> Any:
        if self.backend == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if self.backend == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = max(40, 2 * self.hnsw_m)
            base.hnsw.efSearch = self.ef_search
            return faiss.IndexIDMap2(base)
        if self.backend == "ivf":
            n = 0 if train is None else len(train)
            nlist = self.nlist or max(1, min(4096, int(4 * np.sqrt(max(n, 1)))))
            nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            if train is not None and len(train):
                index.train(np.ascontiguousarray(train, dtype=np.float32))
            index.nprobe = min(self.nprobe, nlist)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
            self.nlist = nlist
            return index
        raise ValueError(f"unknown ANN backend '{self.backend}' (use flat, hnsw or ivf)")

    def _check(self, ids: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of dimension {self.dim}, got shape {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in one batch")
        return vectors

    def index(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        vectors = self._check(ids, vectors)
        self._to_int, self._to_str, self._dead, self._next = {}, {}, set(), 0
        self._index = self._new_index(vectors)
        self._add(ids, vectors)

    def _add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        ints = np.arange(self._next, self._next + len(ids), dtype=np.int64)
        self._next += len(ids)
        for s, i in zip(ids, ints.tolist()):
            self._to_int[s] = i
            self._to_str[i] = s
        self._index.add_with_ids(vectors, ints)

    def append(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        vectors = self._check(ids, vectors)
        if self._index is None:
            self.index(ids, vectors)
            return
        self.delete([s for s in ids if s in self._to_int])
        self._add(ids, vectors)

    def delete(self, ids: Sequence[str]) -> int:
        ints = [self._to_int.pop(s) for s in ids if s in self._to_int]
        if not ints:
            return 0
        for i in ints:
            self._to_str.pop(i, None)
        if self.backend == "hnsw":
            self._dead.update(ints)
        else:
            self._index.remove_ids(np.asarray(ints, dtype=np.int64))
        return len(ints)

    # -- queries ------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, filters: ResultFilters | None = None
    ) -> list[list[tuple[str, float]]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self._index is None or not self._to_int or k <= 0:
            return [[] for _ in range(len(queries))]
        fetch = min(k + len(self._dead), self._index.ntotal)
        faiss.omp_set_num_threads(1 if len(queries) == 1 else _THREADS)
        scores, ints = self._index.search(queries, fetch)
        out: list[list[tuple[str, float]]] = []
        for row_scores, row_ints in zip(scores, ints):
            hits = [
                (self._to_str[i], float(s))
                for s, i in zip(row_scores.tolist(), row_ints.tolist())
                if i >= 0 and i in self._to_str
            ]
            out.append(hits[:k])
        return out

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for row, s in enumerate(ids):
            if s not in self._to_int:
                raise KeyError(s)
            out[row] = self._index.reconstruct(self._to_int[s])
        return out

    @property
    def ids(self) -> list[str]:
        return [self._to_str[i] for i in sorted(self._to_str)]

    def __len__(self) -> int:
        return len(self._to_int)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._to_int

    def present(self, ids: Sequence[str]) -> list[str]:
        return [i for i in ids if i in self._to_int]

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self._index is None:
            self._index = self._new_index(None)
        faiss.write_index(self._index, str(folder / INDEX_FILE))
        state = {"ids": self._to_int, "dead": sorted(self._dead), "next": self._next}
        (folder / IDS_FILE).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        write_manifest(
            folder,
            {
                "kind": "ann", "backend": self.backend, "model": self.model, "dim": self.dim,
                "count": len(self), "hnsw_m": self.hnsw_m, "ef_search": self.ef_search,
                "nlist": self.nlist, "nprobe": self.nprobe,
            },
            [INDEX_FILE, IDS_FILE],
        )

    @classmethod
    def load(cls, folder: Path, info: dict[str, Any]) -> FaissIndex:
        self = cls(
            int(info["dim"]), info["model"], info["backend"], info.get("hnsw_m", 32), info.get("ef_search", 128),
            info.get("nlist"), info.get("nprobe", 32),
        )
        try:
            self._index = faiss.read_index(str(folder / INDEX_FILE))
            state = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
        except Exception as exc:
            raise IndexLoadError(f"{folder}: damaged index ({exc})") from None
        if self._index.d != self.dim:
            raise IndexLoadError(f"{folder}: index dimension {self._index.d} does not match manifest {self.dim}")
        self._to_int = {str(k): int(v) for k, v in state["ids"].items()}
        self._to_str = {v: k for k, v in self._to_int.items()}
        self._dead = set(state.get("dead", []))
        self._next = int(state.get("next", len(self._to_int)))
        if self.backend == "hnsw":
            faiss.downcast_index(self._index.index).hnsw.efSearch = self.ef_search
        if self.backend == "ivf":
            self._index.nprobe = min(self.nprobe, self._index.nlist)
        if len(self._to_int) != int(info.get("count", -1)):
            raise IndexLoadError(f"{folder}: damaged index (id count does not match the manifest)")
        return self
