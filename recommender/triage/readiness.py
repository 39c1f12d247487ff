"""Readiness of a result for transfer, from the fields a record carries (trl, ip_status).

Why a separate score: a result several enterprises want is still no deal if it is an idea on paper with no
protected IP; readiness is what a broker checks second, and missing fields must not count against a corpus
that simply does not record them.
"""

from __future__ import annotations

from typing import Any

from recommender.records import Record
from recommender.triage import weights as W


def trl_of(record: Record) -> int | None:
    """The record's TRL (1-9) if it states a usable one."""
    value: Any = record.extra.get("trl")
    if isinstance(value, bool) or value is None:
        return None
    try:
        trl = int(float(value))
    except (TypeError, ValueError):
        return None
    return trl if 1 <= trl <= 9 else None


def ip_score(record: Record) -> float | None:
    """0-1 for the record's ip_status (granted 1, pending 0.5, none 0), None if absent or unknown."""
    value = record.extra.get("ip_status")
    if not isinstance(value, str):
        return None
    return W.IP_STATUS_SCORES.get(value.strip().lower() if value.isascii() else value.strip())


def readiness(record: Record) -> float:
    """Weighted TRL and IP score in [0, 1]; a missing field counts as neutral."""
    trl = trl_of(record)
    trl_part = W.NEUTRAL_READINESS if trl is None else (trl - 1) / 8
    ip = ip_score(record)
    ip_part = W.NEUTRAL_READINESS if ip is None else ip
    return (W.TRL_WEIGHT * trl_part + W.IP_WEIGHT * ip_part) / (W.TRL_WEIGHT + W.IP_WEIGHT)


def readiness_reason(record: Record) -> str | None:
    """A short Chinese/English phrase for the broker, or None when nothing is known."""
    parts = []
    trl = trl_of(record)
    if trl is not None:
        parts.append(f"TRL {trl}")
    status = record.extra.get("ip_status")
    if isinstance(status, str) and status.strip():
        parts.append(f"IP {status.strip()}")
    return ", ".join(parts) if parts else None
