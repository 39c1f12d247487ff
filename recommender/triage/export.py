"""Writing the shortlist for brokers: CSV (the contract's columns first) and an Excel workbook with a
second sheet listing every push target on its own row, ready to filter by enterprise or fund.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recommender import spreadsheet
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
    """UTF-8 CSV (no BOM, so scripts read the 'rank' header as is); no cell can start a formula."""
    return spreadsheet.write_csv(shortlist_frame(entries), path)


def write_xlsx(entries: Sequence[ShortlistEntry], path: str | Path) -> Path:
    """Workbook with sheets 'shortlist' and 'push' (the push lists); no cell can start a formula."""
    return spreadsheet.write_xlsx({"shortlist": shortlist_frame(entries), "push": push_frame(entries)}, path)
