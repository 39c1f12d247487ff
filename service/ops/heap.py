"""The loaded index kept out of the garbage collector's full passes, so that they no longer stall searches.

A service holding 30,000 results in memory has millions of long-lived objects (records, token lists, postings).
CPython's full (generation 2) collection walks all of them while holding the interpreter: measured on the demo
home, 400-850 ms every 20 s or so under writes, during which no search runs (it was the whole of the half-second
p99 of `scripts/loadtest.py`). What is loaded at startup lives as long as the process, so it is frozen
(``gc.freeze``: moved to a permanent generation the collector skips); what writes create later is collected as
usual. Frozen objects are still freed by reference counting when dropped (a record replaced or deleted); only a
reference cycle among them would stay, and the index holds none worth the cost of walking it.
"""

from __future__ import annotations

import gc
import time


def freeze_loaded_heap() -> tuple[int, float]:
    """Collect once, then freeze everything alive (call after the index is loaded): (objects frozen, seconds)."""
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count(), time.perf_counter() - start
