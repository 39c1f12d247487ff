"""Bulk uploads (JSON Lines, CSV, Excel) read with the same rules as files on disk, within a size limit."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import UploadFile

from recommender.records import SUPPORTED_SUFFIXES, Kind, Record, RecordFileError, load_records
from service.core.config import MAX_BULK_RECORDS, MAX_TEXT_CHARS
from service.core.errors import ServiceError

CHUNK = 1 << 20


def read_upload(upload: UploadFile, kind: Kind, max_bytes: int) -> list[Record]:
    """Every record of the uploaded file, or a 4xx naming each problem (line/row and field)."""
    name = Path(upload.filename or "upload").name
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ServiceError(f"unsupported file type '{suffix or name}': upload {', '.join(SUPPORTED_SUFFIXES)}", 415)
    with tempfile.TemporaryDirectory(prefix="techmatch-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        size = 0
        with path.open("wb") as handle:
            while chunk := upload.file.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ServiceError(f"upload '{name}' is larger than the limit of {max_bytes} bytes; "
                                       "split it into smaller files", 413)
                handle.write(chunk)
        try:
            records, _ = load_records(path, kind)
        except RecordFileError as exc:
            problems = "; ".join(
                f"{e.location}" + (f", field '{e.field}'" if e.field else "") + f": {e.message}"
                for e in exc.errors[:10]
            )
            more = f" (and {len(exc.errors) - 10} more)" if len(exc.errors) > 10 else ""
            raise ServiceError(f"upload '{name}' refused, nothing was written: {problems}{more}", 422) from None
    check_bulk(records, kind)
    return records


def check_unique_ids(ids: list[str]) -> None:
    """Refuse a batch that names one id twice (before ids are placed: see ``service.core.ids``)."""
    seen: set[str] = set()
    duplicates = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if duplicates:
        raise ServiceError(f"duplicate id(s) in one upload: {', '.join(duplicates[:10])}; nothing was written", 422)


def check_bulk(records: list[Record], kind: Kind, text_limit: int | None = MAX_TEXT_CHARS) -> None:
    """Refuse the whole batch for duplicate ids, too many records or over-long texts (a file's rows; a JSON
    body's fields have their limits in the schema, ``text_limit=None``)."""
    if not records:
        raise ServiceError(f"no {kind} records given", 422)
    if len(records) > MAX_BULK_RECORDS:
        raise ServiceError(f"{len(records)} records in one request; the limit is {MAX_BULK_RECORDS}", 413)
    seen: set[str] = set()
    duplicates = sorted({r.id for r in records if r.id in seen or seen.add(r.id)})  # type: ignore[func-returns-value]
    if duplicates:
        raise ServiceError(f"duplicate id(s) in one upload: {', '.join(duplicates[:10])}; nothing was written", 422)
    long = [r.id for r in records if text_limit is not None and len(r.text) > text_limit]
    if long:
        raise ServiceError(f"record(s) {', '.join(long[:10])} exceed {text_limit} characters of text", 422)
