"""Review campaign pages through a TestClient on the fixture world (issue 20): a campaign opened from the form,
a decision with a note, the result page and the shortlist table showing it, the downloads of what was found (CSV
and Excel with the push sheet, as the shortlist's), and bad form input answered with a Chinese page."""

from __future__ import annotations

import csv
import io
import time

import openpyxl
from conftest import Workbench, csrf_of


def _post(client, path: str, data: dict, page: str = "/web/campaigns"):
    return client.post(path, data={**data, "csrf_token": csrf_of(client.get(page).text)})


def _review(client, campaign: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first build of the model runs in the background
        html = client.get(f"/web/campaigns/{campaign}/review").text
        if 'data-testid="review-result"' in html:
            return html.split('data-result-id="', 1)[1].split('"', 1)[0]
        assert 'data-testid="review-model"' in html  # meanwhile: the model's progress
        time.sleep(0.1)
    raise AssertionError("the review page never showed a result")


def test_a_decision_reaches_the_result_page_and_the_downloads(workbench: Workbench):
    client = workbench.client("broker")
    made = _post(client, "/web/campaigns", {"name": "页面评审", "scope": "all"})
    assert made.status_code == 303 and made.headers["location"].endswith("/review")
    campaign = made.headers["location"].split("/")[-2]
    first = _review(client, campaign)
    assert _review(client, campaign) == first  # a reload shows the same held result
    decided = _post(client, f"/web/campaigns/{campaign}/decide",
                    {"result_id": first, "decision": "transferable", "note": "=企业已试用"},
                    page=f"/web/campaigns/{campaign}/review")
    assert decided.status_code == 303
    assert _review(client, campaign) != first
    page = client.get(f"/web/results/{first}").text
    assert 'data-testid="result-reviews"' in page and "可转化" in page and "页面评审" in page
    status = client.get(f"/web/campaigns/{campaign}").text
    assert 'data-testid="gain-curve"' in status and "拐点法" in status and "王经理" in status

    assert _post(client, "/web/shortlist", {"top": "20"}, page="/web/shortlist").status_code == 303
    deadline = time.monotonic() + 120
    while 'data-testid="shortlist"' not in (table := client.get("/web/shortlist").text):
        assert time.monotonic() < deadline, "the shortlist job did not finish"
        time.sleep(0.2)
    assert 'data-testid="shortlist-review"' in table and "评审：可转化" in table  # the shortlist shows the decision

    body = client.get(f"/web/campaigns/{campaign}/export.csv")
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.content.decode("utf-8"))))
    assert [r["result_id"] for r in rows] == [first]
    assert rows[0]["decided_by"] == "王经理" and rows[0]["note"] == "'=企业已试用"  # no formula
    assert list(rows[0])[:4] == ["rank", "result_id", "score", "top_need_ids"]  # the shortlist's columns
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/web/campaigns/{campaign}/export.xlsx").content))
    assert book.sheetnames == ["shortlist", "push"]
    push = list(book["push"].iter_rows(values_only=True))
    assert push[0][:2] == ("rank", "result_id") and all(r[1] == first for r in push[1:])


def test_bad_campaign_forms_get_a_clear_page(workbench: Workbench):
    client = workbench.client("broker")
    for data, status, text in (({"name": "", "scope": "all"}, 422, "名称"),
                               ({"name": "x", "scope": "field", "value": ""}, 422, "需要填写"),
                               ({"name": "x", "scope": "since", "value": "昨天"}, 422, "YYYY-MM-DD"),
                               ({"name": "x", "scope": "institution", "value": "不存在的大学"}, 409, "没有任何")):
        answer = _post(client, "/web/campaigns", data)
        assert answer.status_code == status and text in answer.text, (data, answer.status_code)
        assert "Traceback" not in answer.text
    assert client.get("/web/campaigns/99999").status_code == 404
    assert client.get("/web/campaigns/abc/review").status_code == 404
