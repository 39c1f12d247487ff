"""Checksummed folders: one ``manifest.json`` naming the folder's kind, format version and each file's sha256.

Every saved folder (an index side, a grader or re-ranker, the static word-vector model) is data a broker may
copy between machines; each is refused at load time if it is of another kind or version, or if a file is
missing, damaged or edited. One implementation serves them all (it sits in the lowest layer that saves
models); the caller passes its error type, the noun its messages use and the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def file_sha256(path: Path) -> str:
    """The file's sha256, read in blocks (hashlib's own loop)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_manifest(folder: Path, fields: dict[str, Any], files: Iterable[str], indent: int = 1) -> None:
    """Write the manifest (``fields`` plus each file's checksum); call it last, once the files are written."""
    manifest = dict(fields, files={f: file_sha256(Path(folder) / f) for f in files})
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=indent), encoding="utf-8")


def read_manifest(
    folder: Path, kind: str | None, format_version: int, error: type[Exception], noun: str, rebuild: str,
    exact_files: set[str] | None = None,
) -> dict[str, Any]:
    """The verified manifest of ``folder``, or ``error`` saying what is wrong and how to rebuild it.

    ``kind``: the manifest's ``kind`` must equal it (None: not checked). ``exact_files``: the files it must
    list, no more and no fewer (None: whatever it lists is checked)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise error(f"{folder}: no {noun} here (the folder is missing); {rebuild}")
    if not path.is_file():
        raise error(f"{folder}: no {noun} here ({MANIFEST} is missing); {rebuild}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: damaged manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise error(f"{path}: damaged manifest (not a JSON object)")
    if kind is not None and manifest.get("kind") != kind:
        raise error(f"{folder}: holds '{manifest.get('kind')}', expected '{kind}'")
    if manifest.get("format_version") != format_version:
        raise error(f"{folder}: {noun} format version {manifest.get('format_version')} is not supported (this "
                    f"techmatch reads version {format_version}); {rebuild}")
    files = manifest.get("files")
    if not isinstance(files, dict) or (exact_files is not None and set(files) != exact_files):
        raise error(f"{folder}: manifest does not list exactly the {noun}'s files; {rebuild}")
    for name, checksum in files.items():
        file = folder / name
        if not file.is_file():
            raise error(f"{folder}: damaged {noun} ({name} is missing)")
        if file_sha256(file) != checksum:
            raise error(f"{folder}: damaged {noun} ({name} does not match its checksum: damaged or edited)")
    return manifest
