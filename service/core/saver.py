"""The index folder saved in the background, at most every few seconds or N changes, and on shutdown.

Saving the folder after every write put a 0.3-3 s save on the write's request path and made searches
queue behind it. The database is the truth and every start re-syncs the folder from it (by content
hash), so the folder only has to be recent enough for a fast restart: a thread saves it when changes are
pending and ``interval`` seconds have passed since the last save, or sooner once ``every`` changes are
pending; never so often that saving takes more than ``busy_share`` of the time (a save costs CPU that
searches need: under back-to-back writes at 30,000 results, saving every 5 s took a sixth of the
interpreter's time). The save itself takes only the engine's own saving and writing locks (``Engine.save``): searches
never wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("techmatch.service")


class FolderSaver:
    """Calls ``save`` in a thread of its own when changes are pending (debounced); ``close`` saves the rest."""

    def __init__(self, save: Callable[[], None], interval: float = 5.0, every: int = 1000,
                 busy_share: float = 0.1) -> None:
        self._save = save
        self.interval = interval
        self.every = every
        # A save takes CPU the searches need (1.4 s at 30,000 results on 2 cores, more under load): the gap
        # after one is at least long enough that saving takes at most this share of the time.
        self.busy_share = busy_share
        self.last_duration = 0.0
        self.pending = 0
        self.saves = 0  # completed background saves (for tests and /ready)
        self._last = time.monotonic()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="techmatch-index-saver", daemon=True)
        self._thread.start()

    def changed(self, count: int = 1) -> None:
        """Note ``count`` changed records; the thread saves when the interval or the count says so."""
        with self._cond:
            self.pending += max(count, 1)
            self._cond.notify()

    def flush(self) -> None:
        """Save now if anything is pending (in the caller's thread)."""
        with self._cond:
            pending, self.pending = self.pending, 0
        if pending:
            self._save_logged(pending)

    def _due(self) -> float:
        """Seconds until a save is due (0: now), or -1 when nothing is pending."""
        if not self.pending:
            return -1.0
        if self._stopping:
            return 0.0
        rest = self.last_duration * (1.0 / self.busy_share - 1.0) if self.busy_share > 0 else 0.0
        gap = rest if self.pending >= self.every else max(self.interval, rest)
        return max(0.0, self._last + gap - time.monotonic())

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (wait := self._due()) != 0.0:
                    self._cond.wait(None if wait < 0 else wait)
                if self._stopping:
                    return
                pending, self.pending = self.pending, 0
            self._save_logged(pending)

    def _save_logged(self, pending: int) -> None:
        start = time.monotonic()
        try:
            self._save()
            self.saves += 1
            self.last_duration = time.monotonic() - start
        except Exception:  # the database keeps every write: the next save (or the next start) catches up
            log.exception("saving the index folder failed; retrying at the next interval")
            with self._cond:
                self.pending += pending
        finally:
            self._last = time.monotonic()

    def close(self) -> None:
        """Stop the thread and save what is pending (shutdown)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()
        self.flush()
