"""One ranking signal (dense meaning, BM25 words, TF-IDF characters) over a mutable set of documents.

Every signal answers the same three questions, which is what lets the hybrid fuse them, explain them and
hand them to a learned grader: the top documents for a query, the score of any given document for a
query, and how to change, save and load itself.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:  # records (which filters reads) imports Texts from here
    from recommender.filters import Metadata, ResultFilters

Hits = list[tuple[str, float]]


@dataclass(frozen=True)
class Texts:
    """The texts of one query or document: the full text, and its focus (the title) where there is one.

    Lexical signals read the full text; the dense signal embeds the focus, because a small embedding
    model summarises a one-line problem statement far better than 300 characters of targets and
    constraints (bdci2019 dev: nDCG@10 0.180 for title queries vs 0.141 for full texts, e5-small), and
    because embedding titles instead of whole abstracts is several times faster on 2 CPU cores.
    """

    text: str
    focus: str | None = None

    @property
    def dense_text(self) -> str:
        return self.focus or self.text


TextsLike = Union[str, Texts]  # noqa: UP007 - a runtime alias, must work on Python 3.10 too


def as_texts(value: TextsLike) -> Texts:
    return value if isinstance(value, Texts) else Texts(value)


class Signal(ABC):
    """A ranker over documents with string ids; ``fit`` replaces, ``upsert``/``delete`` change in place.

    ``metadata`` (each document's filter values) and ``filters`` are for signals that filter inside their
    index (``filters_pushdown``: the dense signal on Milvus); the others accept and ignore them, and the
    hybrid index filters their candidates.
    """

    name: str
    # True when ``search`` spends its time in native code that releases the GIL (an encoder, FAISS): the
    # hybrid index then runs it in a helper thread, next to the signals that need the interpreter.
    runs_outside_gil: bool = False

    @property
    def filters_pushdown(self) -> bool:
        """Whether ``search(..., filters=f)`` returns only documents that ``f`` accepts."""
        return False

    @property
    def shared_storage(self) -> bool:
        """Whether the signal's state lives outside this process, shared by every process that opens it (a
        vector database): then it is changed in place, never rebuilt beside the live copy and swapped in."""
        return False

    @abstractmethod
    def fit(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None: ...

    @abstractmethod
    def upsert(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None: ...

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def search(self, queries: Sequence[Texts], depth: int, filters: ResultFilters | None = None) -> list[Hits]:
        """Top ``depth`` (id, score) per query, best first (among the documents ``filters`` accepts, if pushed
        down)."""

    @abstractmethod
    def score(self, queries: Sequence[Texts], ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Scores of the given ids for each query (row i: query i against ids[i])."""

    @abstractmethod
    def save(self, folder: Path) -> list[str]:
        """Write state into folder; return the file names written (for the manifest)."""

    @abstractmethod
    def load(self, folder: Path) -> None: ...

    def prepare(self) -> None:  # noqa: B027 - optional: most signals have nothing lazy to build
        """Build whatever ``search`` would otherwise build lazily on its first call after a change, so that a
        writer pays for it and not the next reader (a no-op for signals without lazy state)."""


class SlotTable:
    """Maps string ids to matrix rows; deleted rows stay as dead slots until the next fit."""

    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.row: dict[str, int] = {}

    def reset(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        self.row = {doc_id: i for i, doc_id in enumerate(self.ids)}

    def append(self, ids: Sequence[str]) -> list[int]:
        self.delete(ids)
        start = len(self.ids)
        self.ids.extend(ids)
        for offset, doc_id in enumerate(ids):
            self.row[doc_id] = start + offset
        return list(range(start, start + len(ids)))

    def delete(self, ids: Sequence[str]) -> list[int]:
        rows = [self.row.pop(doc_id) for doc_id in ids if doc_id in self.row]
        for r in rows:
            self.ids[r] = None
        return rows

    def alive_mask(self) -> np.ndarray:
        return np.array([doc_id is not None for doc_id in self.ids], dtype=bool)

    def __len__(self) -> int:
        return len(self.row)


def top_hits(scores: np.ndarray, slots: SlotTable, depth: int, alive: np.ndarray | None = None) -> Hits:
    """Best ``depth`` live slots of a score vector, ties broken by row order (deterministic)."""
    if alive is not None:
        scores = np.where(alive, scores, -np.inf)
    depth = min(depth, len(slots))
    if depth <= 0:
        return []
    part = np.argpartition(-scores, depth - 1)[:depth]
    order = part[np.lexsort((part, -scores[part]))]
    ids = slots.ids  # plain Python values from here: per-element numpy scalars cost more than the search
    return [(ids[i], v) for i, v in zip(order.tolist(), scores[order].tolist())
            if ids[i] is not None and -math.inf < v < math.inf]
