"""Versioned, checksummed model folders: LightGBM text models plus JSON, never pickle.

A grader or re-ranker is data a broker may copy between machines; loading it must not run code. LightGBM's
own text format (``Booster(model_str=...)``) and JSON are parsed, not executed, and every file's sha256 is
checked against the manifest before anything is read, so a damaged or edited artefact is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recommender.ann.base import IndexLoadError, file_sha256

ARTEFACT_FORMAT = 1
MANIFEST = "manifest.json"
INFO_FILE = "info.json"


class ArtefactError(IndexLoadError):
    """A model folder that must not be used: missing, damaged, tampered with, or of another kind/version."""


def save_artefact(folder: str | Path, kind: str, info: Mapping[str, Any], models: Mapping[str, str]) -> Path:
    """Write ``info`` (JSON) and each named text model, then a manifest with their checksums."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INFO_FILE).write_text(json.dumps(dict(info), ensure_ascii=False, indent=1), encoding="utf-8")
    files = [INFO_FILE]
    for name, text in models.items():
        file = f"{name}.lgb.txt"
        (folder / file).write_text(text, encoding="utf-8")
        files.append(file)
    manifest = {
        "kind": kind, "format_version": ARTEFACT_FORMAT, "models": list(models),
        "files": {f: file_sha256(folder / f) for f in files},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return folder


def load_artefact(folder: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``(info, models)`` from a folder written by ``save_artefact``; ``ArtefactError`` on any mismatch."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtefactError(f"{folder}: no {kind} here ({MANIFEST} is missing); train one with 'techmatch train'")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"{path}: damaged manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != kind:
        raise ArtefactError(f"{folder}: holds '{manifest.get('kind') if isinstance(manifest, dict) else '?'}', "
                            f"expected '{kind}'")
    if manifest.get("format_version") != ARTEFACT_FORMAT:
        raise ArtefactError(
            f"{folder}: {kind} format version {manifest.get('format_version')} is not supported (this techmatch "
            f"reads version {ARTEFACT_FORMAT}); retrain it with 'techmatch train'"
        )
    files = manifest.get("files") or {}
    expected = {INFO_FILE} | {f"{m}.lgb.txt" for m in manifest.get("models", [])}
    if set(files) != expected:
        raise ArtefactError(f"{folder}: manifest does not list exactly the {kind}'s files; retrain it")
    for name, checksum in files.items():
        file = folder / name
        if not file.is_file():
            raise ArtefactError(f"{folder}: damaged {kind} ({name} is missing)")
        if file_sha256(file) != checksum:
            raise ArtefactError(f"{folder}: refusing {kind}: {name} does not match its checksum (damaged or edited)")
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    models = {m: (folder / f"{m}.lgb.txt").read_text(encoding="utf-8") for m in manifest["models"]}
    return info, models
