"""Importing a file of results or needs (.xlsx, .csv, .jsonl) with a report of every row that is wrong.

The file is read by ``recommender.records.load_records`` (the same rules as the command line): strictly
(any bad row refuses the whole file, each problem named by row and field) or, when asked, leniently
(good rows are written, every skipped row is reported). Nothing is ever dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from recommender.records import Kind, RecordError, load_records
from service.core import catalog
from service.core.config import MAX_BULK_RECORDS, MAX_TEXT_CHARS
from service.core.errors import ServiceError
from service.core.sync import IndexSync


@dataclass
class ImportReport:
    """What an import wrote and what it skipped (only a lenient import skips)."""

    kind: Kind
    name: str
    written: int
    skipped: list[RecordError]
    ids: list[str]
    duplicates_of_existing: dict[str, list[str]] = field(default_factory=dict)  # id -> stored duplicates


def import_file(session: Session, sync: IndexSync, kind: Kind, path: Path, name: str,
                skip_invalid: bool = False, replace: bool = False) -> ImportReport:
    """Write the file's records (all of them, or with ``skip_invalid`` the valid ones) and index them.

    Raises RecordFileError with every problem when the file is refused; Conflict when ids exist already
    and ``replace`` is off; ServiceError for a file over the limits. Nothing is written in those cases."""
    records, report = load_records(path, kind, skip_invalid)
    if len(records) > MAX_BULK_RECORDS:
        raise ServiceError(f"{len(records)} records in one file; the limit is {MAX_BULK_RECORDS}", 413)
    long = [r.id for r in records if len(r.text) > MAX_TEXT_CHARS]
    if long:
        raise ServiceError(f"record(s) {', '.join(long[:10])} exceed {MAX_TEXT_CHARS} characters of text", 422)
    duplicates = sync.engine.existing_duplicates(kind, records)  # before writing: what is stored already
    catalog.create_records(session, sync, kind, records, replace=replace)
    return ImportReport(kind, name, len(records), list(report.skipped), [r.id for r in records], duplicates)
