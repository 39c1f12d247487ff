"""Every CSV and Excel file techmatch writes goes through here, so no cell can run as a formula.

Titles, notes, names and reasons come from users and uploaded files. A cell that begins with ``=``, ``+``,
``-`` or ``@`` (or a tab or carriage return, which some spreadsheets skip before reading one of those) is
taken as a formula by Excel, LibreOffice and Sheets when a broker opens the file: ``=HYPERLINK(...)`` or
``=WEBSERVICE(...)`` can leak the sheet, and openpyxl itself would store such a string as a formula.
``safe_cells`` prefixes those strings with a single quote (OWASP's advice for CSV injection); numbers,
negative scores included, stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A string a spreadsheet would read as a formula, with a leading quote; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (values, index and headers) cannot start a formula."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(neutralise)
    if out.index.dtype == object:
        out.index = out.index.map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def _one_line_breaks(value: Any) -> Any:
    """Carriage returns in a text cell as line feeds: the csv module's minimal quoting quotes a cell with a
    line feed but not one with a bare carriage return, at which readers would split the row."""
    if isinstance(value, str) and "\r" in value:
        return value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def write_csv(frame: pd.DataFrame, path: str | Path, *, index: bool = False, encoding: str = "utf-8") -> Path:
    """The frame as CSV, its cells made safe. Minimal quoting, so the header and plain cells stay as a reader
    of the contract (``rank,result_id,score,top_need_ids``) expects them; line breaks inside a cell are quoted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe = safe_cells(frame)
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column].dtype):
            safe[column] = safe[column].map(_one_line_breaks)
    safe.to_csv(path, index=index, encoding=encoding, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return path


def write_xlsx(sheets: Mapping[str, pd.DataFrame], path: str | Path, *, index: bool = False) -> Path:
    """A workbook with one sheet per frame, its cells made safe."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            safe_cells(frame).to_excel(writer, sheet_name=name, index=index)
    return path


def write_table(frame: pd.DataFrame, path: str | Path, sheet: str = "data") -> Path:
    """CSV or a one-sheet workbook, by the file's suffix (.csv or .xlsx)."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return write_xlsx({sheet: frame}, path)
    return write_csv(frame, path)
