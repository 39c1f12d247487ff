"""Broker feedback (accepted, rejected, contacted, signed) turned into graded judgements for training.

What each outcome says about a (need, result) pair, on the four-level scale of the judged data:

* ``rejected``  -> 0: the broker looked and found no relevance;
* ``accepted``  -> 2: the broker judged it worth proposing (fairly strong);
* ``contacted`` -> 2: the enterprise was approached, which comes after acceptance in the broker's funnel, so
  it is no weaker than ``accepted``; it is not 3, since contact alone does not prove the match was strong;
* ``signed``    -> 3: a contract was signed: the strongest evidence of relevance there is.

A pair can receive several outcomes over time (accepted, then contacted, then signed or rejected): the
latest one (by ``created_at``, then by order in the input) wins, because it reflects the broker's final
view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recommender.errors import UserError

FEEDBACK_GRADES: dict[str, int] = {"rejected": 0, "accepted": 2, "contacted": 2, "signed": 3}
REQUIRED_FIELDS = ("need_id", "result_id", "outcome")


class FeedbackError(UserError):
    """Feedback rows that cannot become judgements (missing fields, unknown outcome, unreadable file)."""


def _check_row(row: Mapping[str, Any], where: str) -> tuple[str, str, int, str]:
    if not isinstance(row, Mapping):
        raise FeedbackError(f"{where}: expected an object with {', '.join(REQUIRED_FIELDS)}")
    missing = [f for f in REQUIRED_FIELDS if row.get(f) in (None, "")]
    if missing:
        raise FeedbackError(f"{where}, field '{missing[0]}': is missing or empty"
                            + (f" (so are {', '.join(missing[1:])})" if missing[1:] else ""))
    outcome = str(row["outcome"]).strip().lower()
    if outcome not in FEEDBACK_GRADES:
        raise FeedbackError(f"{where}, field 'outcome': unknown outcome '{row['outcome']}' "
                            f"(use one of {', '.join(FEEDBACK_GRADES)})")
    return str(row["need_id"]).strip(), str(row["result_id"]).strip(), FEEDBACK_GRADES[outcome], \
        str(row.get("created_at") or "")


def feedback_to_qrels(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Judgements (need id -> result id -> grade) from feedback rows; the latest outcome of a pair wins."""
    checked = [(*_check_row(row, f"feedback row {number}"), number) for number, row in enumerate(rows, start=1)]
    checked.sort(key=lambda item: (item[3], item[4]))  # created_at (ISO 8601 sorts as text), then input order
    qrels: dict[str, dict[str, int]] = {}
    for need_id, result_id, grade, _, _ in checked:
        qrels.setdefault(need_id, {})[result_id] = grade
    return qrels


def read_feedback_file(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines export (``techmatch feedback export``): need_id, result_id, outcome, note, created_at."""
    path = Path(path)
    if not path.is_file():
        raise FeedbackError(f"{path}: no such feedback file (export one with 'techmatch feedback export --out F')")
    rows = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise FeedbackError(f"{path} line {number}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FeedbackError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
            _check_row(row, f"{path} line {number}")
            rows.append(row)
    return rows


def merge_qrels(*sources: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Several judgement sets in one; a later source overrides an earlier one for the same pair."""
    merged: dict[str, dict[str, int]] = {}
    for source in sources:
        for need_id, grades in source.items():
            merged.setdefault(need_id, {}).update({r: int(g) for r, g in grades.items()})
    return merged
