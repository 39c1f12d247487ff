"""Versioned, checksummed model folders: LightGBM text models, tensors and JSON, never pickle.

A grader or re-ranker is data a broker may copy between machines; loading it must not run code. LightGBM's
own text format (``Booster(model_str=...)``), safetensors (the cross-encoder's weights) and JSON are parsed,
not executed, and every file's sha256 is checked against the manifest before anything is read, so a
damaged or edited artefact is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from embeddings.manifest import MANIFEST, read_manifest, write_manifest
from recommender.ann.base import IndexLoadError

ARTEFACT_FORMAT = 1
INFO_FILE = "info.json"


class ArtefactError(IndexLoadError):
    """A model folder that must not be used: missing, damaged, tampered with, or of another kind/version."""


def save_artefact(
    folder: str | Path, kind: str, info: Mapping[str, Any], models: Mapping[str, str],
    blobs: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``info`` (JSON), each named text model and each named binary file (``blobs``: safetensors
    bytes, never pickle), then a manifest with their checksums."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INFO_FILE).write_text(json.dumps(dict(info), ensure_ascii=False, indent=1), encoding="utf-8")
    files = [INFO_FILE]
    for name, text in models.items():
        file = f"{name}.lgb.txt"
        (folder / file).write_text(text, encoding="utf-8")
        files.append(file)
    for name, data in (blobs or {}).items():
        (folder / name).write_bytes(data)
        files.append(name)
    write_manifest(folder, {"kind": kind, "format_version": ARTEFACT_FORMAT, "models": list(models),
                            "blobs": list(blobs or {})}, files)
    return folder


def load_artefact(folder: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``(info, models)`` from a folder written by ``save_artefact``; ``ArtefactError`` on any mismatch."""
    info, models, _ = load_artefact_with_blobs(folder, kind)
    return info, models


def load_artefact_with_blobs(
    folder: str | Path, kind: str
) -> tuple[dict[str, Any], dict[str, str], dict[str, bytes]]:
    """``(info, models, blobs)``: every file checked against the manifest before it is returned."""
    folder = Path(folder)
    rebuild = "retrain it with 'techmatch train'"
    try:
        listed = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        expected = {INFO_FILE} | {f"{m}.lgb.txt" for m in listed.get("models", [])} | set(listed.get("blobs", []))
    except (OSError, ValueError, AttributeError, TypeError):
        expected = None  # read_manifest says what is wrong with it
    manifest = read_manifest(folder, kind, ARTEFACT_FORMAT, ArtefactError, kind.removeprefix("techmatch-"), rebuild,
                             expected)
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    models = {m: (folder / f"{m}.lgb.txt").read_text(encoding="utf-8") for m in manifest["models"]}
    blobs = {b: (folder / b).read_bytes() for b in manifest.get("blobs", [])}
    return info, models, blobs
