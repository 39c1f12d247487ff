"""Enterprise records (enterprises.jsonl): the names behind the needs' ``enterprise`` ids.

Contacts are personal data: they are dropped on load so that no export or API answer can leak them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recommender.records import Record, RecordError, RecordFileError, iter_raw

PRIVATE_FIELDS = ("contact",)


def load_enterprises(path: str | Path) -> dict[str, dict[str, Any]]:
    """Enterprise id -> fields (without contacts), from .jsonl/.csv/.xlsx; every row needs an id."""
    path = Path(path)
    if not path.is_file():
        raise RecordFileError(str(path), [RecordError(str(path), "file", None, "does not exist or is not a file")])
    out: dict[str, dict[str, Any]] = {}
    errors: list[RecordError] = []
    for location, raw, read_error in iter_raw(path):
        if read_error is not None:
            errors.append(read_error)
            continue
        if not isinstance(raw, dict) or raw.get("id") in (None, ""):
            errors.append(RecordError(str(path), location, "id", "is missing (each enterprise needs an id)"))
            continue
        eid = raw["id"]
        eid = str(int(eid)) if isinstance(eid, float) and eid.is_integer() else str(eid).strip()
        if eid in out:
            errors.append(RecordError(str(path), location, "id", f"duplicate enterprise id '{eid}'"))
            continue
        out[eid] = {k: v for k, v in raw.items() if k not in PRIVATE_FIELDS}
    if errors:
        raise RecordFileError(str(path), errors)
    if not out:
        raise RecordFileError(str(path), [RecordError(str(path), "file", None, "is empty: no enterprises found")])
    return out


def enterprise_of(need: Record, enterprises: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[str, str]:
    """The (id, display name) of the enterprise behind a need; a need without one stands for itself."""
    ent_id = need.extra.get("enterprise")
    ent_id = str(ent_id) if ent_id not in (None, "") else need.id
    info = (enterprises or {}).get(ent_id, {})
    return ent_id, str(info.get("name") or need.extra.get("enterprise_name") or need.title)
