"""Micro-batching of concurrent searches: requests that arrive together are ranked in one index call.

The dense encoder and the TF-IDF product cost far less per query in a batch than one by one, and a
couple of threads doing the work beat eight threads fighting over the GIL on two cores. There is no
timer: a waiting request leads when fewer than ``max_parallel`` batches are running, takes everything
queued (up to ``max_batch``), runs it and hands out the answers; a lone request runs at once. Two
batches at a time let the GIL-free parts (the e5 encoder, FAISS, sparse products) of one overlap the
Python parts of the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from recommender.hybrid import HybridIndex, Match
from recommender.signal import Texts
from service.core.rwlock import ReadWriteLock


@dataclass
class _Pending:
    query: Texts
    k: int
    explain: bool
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Match] | None = None
    error: BaseException | None = None


class SearchBatcher:
    """Runs unfiltered top-k searches of one side, batched across the threads that ask at the same time."""

    def __init__(
        self, index: Callable[[], HybridIndex], lock: ReadWriteLock, max_batch: int = 16, max_parallel: int = 2
    ) -> None:
        self.index = index
        self.lock = lock
        self.max_batch = max_batch
        self.max_parallel = max_parallel
        self._mutex = threading.Lock()
        self._pending: list[_Pending] = []
        self._running = 0
        self.batches = 0  # how many index calls were made (for tests and tuning)

    def search(self, query: Texts, k: int, explain: bool = True) -> list[Match]:
        item = _Pending(query, k, explain)
        with self._mutex:
            self._pending.append(item)
        while not item.done.is_set():
            with self._mutex:
                batch = None
                if self._running < self.max_parallel and self._pending:
                    self._running += 1
                    batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            if batch is None:
                item.done.wait(0.002)
                continue
            try:
                self._run(batch)
            finally:
                with self._mutex:
                    self._running -= 1
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _run(self, batch: list[_Pending]) -> None:
        try:
            with self.lock.reading():
                index = self.index()
                for explain in (True, False):
                    group = [p for p in batch if p.explain == explain]
                    if not group:
                        continue
                    self.batches += 1
                    ranked = index.search([p.query for p in group], max(p.k for p in group), explain=explain)
                    for p, matches in zip(group, ranked):
                        p.result = matches[:p.k]
        except BaseException as exc:  # every waiter gets the error, not a hang
            for p in batch:
                p.error = exc
        finally:
            for p in batch:
                if p.result is None and p.error is None:
                    p.error = RuntimeError("search produced no answer")
                p.done.set()
