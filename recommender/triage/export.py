"""Writing the shortlist for brokers: CSV (the contract's columns first) and an Excel workbook with a
second sheet listing every push target on its own row, ready to filter by enterprise or fund.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recommender.triage.shortlist import ShortlistEntry

CONTRACT_COLUMNS = ["rank", "result_id", "score", "top_need_ids"]


def shortlist_frame(entries: Sequence[ShortlistEntry]) -> pd.DataFrame:
    rows = [e.to_row() for e in entries]
    if not rows:
        return pd.DataFrame(columns=CONTRACT_COLUMNS)
    return pd.DataFrame(rows)


def push_frame(entries: Sequence[ShortlistEntry]) -> pd.DataFrame:
    """One row per (shortlisted result, push target)."""
    rows = [
        {"rank": e.rank, "result_id": e.result_id, "title": e.title, "target_kind": t.kind, "target_id": t.id,
         "target_name": t.name, "target_score": round(t.score, 4), "via_need": t.need_id, "reason": t.reason}
        for e in entries for t in e.push
    ]
    return pd.DataFrame(rows, columns=["rank", "result_id", "title", "target_kind", "target_id", "target_name",
                                       "target_score", "via_need", "reason"])


def write_csv(entries: Sequence[ShortlistEntry], path: str | Path) -> Path:
    """UTF-8 CSV (no BOM, so scripts read the 'rank' header as is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shortlist_frame(entries).to_csv(path, index=False, encoding="utf-8")
    return path


def write_xlsx(entries: Sequence[ShortlistEntry], path: str | Path) -> Path:
    """Workbook with sheets 'shortlist' and 'push'."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        shortlist_frame(entries).to_excel(writer, sheet_name="shortlist", index=False)
        push_frame(entries).to_excel(writer, sheet_name="push", index=False)
    return path
