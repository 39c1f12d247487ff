"""Latency summaries: tail percentiles matter for an interactive recommender, means hide the slow queries."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["percentiles"]


def percentiles(latencies_seconds: Iterable[float]) -> dict[str, float]:
    """Summarise per-request latencies given in seconds as ``{"p50", "p95", "p99", "mean"}`` in milliseconds.

    Percentiles use numpy's default linear interpolation. Empty, negative or non-finite input raises
    ``ValueError``: a NaN timing means a broken measurement, not a fast request.
    """
    values = np.asarray(list(latencies_seconds), dtype=np.float64)
    if values.size == 0:
        raise ValueError("no latencies to summarise")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("latencies must be finite and non-negative (seconds)")
    ms = values * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean())}
