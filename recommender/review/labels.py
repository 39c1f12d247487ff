"""The labels file of a simulated review: ``result_id<TAB>label`` a line (label 1 transferable, 0 not),
with an optional third column, the need the result was judged against (used as context by the loop)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from recommender.errors import UserError


@dataclass
class Labels:
    labels: dict[str, int]
    context: dict[str, str] = field(default_factory=dict)


def read_labels(path: str | Path, known: Collection[str] | None = None) -> Labels:
    """Read and check a labels file; every problem is one ``UserError`` naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"labels file {path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError(f"labels file {path} is not UTF-8") from None
    labels: dict[str, int] = {}
    context: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
        if len(parts) < 2:
            raise UserError(f"{path}, line {number}: expected 'result_id<TAB>label', got '{line.strip()}'")
        rid, label = parts[0].strip(), parts[1].strip()
        if label not in ("0", "1"):
            raise UserError(f"{path}, line {number}: label must be 0 or 1, got '{label}'")
        if rid in labels:
            raise UserError(f"{path}, line {number}: result '{rid}' is labelled twice")
        labels[rid] = int(label)
        if len(parts) > 2 and parts[2].strip():
            context[rid] = parts[2].strip()
    if not labels:
        raise UserError(f"labels file {path} is empty: the pool to review has no result")
    if known is not None:
        unknown = [r for r in labels if r not in known]
        if unknown:
            raise UserError(f"{path}: {len(unknown)} result id(s) are not in the results file "
                            f"(e.g. '{unknown[0]}')")
    if not any(labels.values()):
        raise UserError(f"{path}: no result is labelled 1 (transferable): there is nothing to find")
    if all(labels.values()):
        raise UserError(f"{path}: every result is labelled 1: there is nothing to tell apart")
    return Labels(labels, context)
