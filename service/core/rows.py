"""The stored records' tables by side, and what the index and the vector table compare them by."""

from __future__ import annotations

import hashlib
import json

from recommender.records import Kind, Record, parse_record
from service.core.models import NeedRow, ResultRow

ROWS = {"need": NeedRow, "result": ResultRow}


def record_hash(record: Record, kind: Kind) -> str:
    """sha256 of the record's contract fields in canonical JSON: equal content, equal hash."""
    canonical = json.dumps(record.to_dict(kind), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def row_record(row: NeedRow | ResultRow, kind: Kind) -> Record:
    record, problems = parse_record(row.data, kind, "database", f"id {row.id}")
    if record is None:
        raise ValueError(f"stored {kind} '{row.id}' is damaged: {problems[0]}")
    return record
