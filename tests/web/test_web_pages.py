"""The workbench's pages through a TestClient on the fixture world: sign-in and its errors, sessions, CSRF,
scoping, forms, feedback, the upload report, the shortlist job and its downloads."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta

import openpyxl
import pytest
from conftest import FIXTURES, PASSWORD, Workbench, csrf_of
from sqlalchemy import select, update

from service.core.accounts import set_disabled
from service.core.jobs import STALE_SECONDS, get_job
from service.core.models import FeedbackRow, JobRow, NeedRow, utcnow


def post(client, path: str, data: dict | None = None, files=None, page: str | None = None, **kw):
    """Submit a form as the browser would: with the CSRF token of the page it came from."""
    if page is None:
        page = "/web/needs" if client.cookies.get("tm_session") else "/web/login"
    token = csrf_of(client.get(page).text)
    return client.post(path, data={**(data or {}), "csrf_token": token}, files=files, **kw)


# -- signing in ------------------------------------------------------------------------------------------
def test_sign_in_errors_get_a_clear_page(workbench: Workbench):
    client = workbench.client()
    wrong = post(client, "/web/login", {"username": "broker", "password": "not-the-password"})
    unknown = post(client, "/web/login", {"username": "nobody", "password": PASSWORD})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "用户名或密码不正确" in response.text and "Traceback" not in response.text
        assert "tm_session" not in response.cookies
    with workbench.services.sessions() as session:
        set_disabled(session, "ent2", True)
    try:
        disabled = post(client, "/web/login", {"username": "ent2", "password": PASSWORD})
        assert disabled.status_code == 403 and "该账号已停用" in disabled.text
    finally:
        with workbench.services.sessions() as session:
            set_disabled(session, "ent2", False)


def test_session_cookie_is_httponly_samesite_and_secure_over_https(workbench: Workbench):
    for https in (False, True):
        client = workbench.client(https=https)
        response = post(client, "/web/login", {"username": "broker", "password": PASSWORD})
        assert response.status_code == 303 and response.headers["location"] == "/web/dashboard"
        cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("tm_session="))
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/web" in flags
        assert ("secure" in flags) == https
        assert len(cookie.split(";")[0].split("=", 1)[1]) >= 40  # a random token, not a user id


def test_sign_out_and_disabling_end_the_session(workbench: Workbench):
    client = workbench.client("ent1")
    assert client.get("/web/needs").status_code == 200
    response = post(client, "/web/logout", page="/web/needs")
    assert response.status_code == 303 and response.headers["location"] == "/web/login"
    stale = workbench.client()
    stale.cookies.set("tm_session", client.cookies.get("tm_session") or "x", path="/web")
    assert stale.get("/web/needs").headers["location"].startswith("/web/login")

    other = workbench.client("ent1")
    with workbench.services.sessions() as session:
        set_disabled(session, "ent1", True)
    try:
        assert other.get("/web/needs").status_code == 303  # back to the sign-in page at once
    finally:
        with workbench.services.sessions() as session:
            set_disabled(session, "ent1", False)


def test_visitors_are_sent_to_sign_in_and_come_back(workbench: Workbench):
    client = workbench.client()
    response = client.get("/web/needs/N1")
    assert response.status_code == 303 and response.headers["location"] == "/web/login?next=%2Fweb%2Fneeds%2FN1"
    response = post(client, "/web/login", {"username": "ent1", "password": PASSWORD, "next": "/web/needs/N1"})
    assert response.headers["location"] == "/web/needs/N1"
    client = workbench.client()  # never to another site
    response = post(client, "/web/login", {"username": "ent1", "password": PASSWORD, "next": "//evil.example/x"})
    assert response.headers["location"] == "/web/needs"
    assert workbench.client().get("/").headers["location"] == "/web/"


def test_posts_without_the_right_csrf_token_are_refused(workbench: Workbench):
    client = workbench.client()
    client.get("/web/login")
    no_token = client.post("/web/login", data={"username": "broker", "password": PASSWORD})
    assert no_token.status_code == 403 and "表单已失效" in no_token.text and "tm_session" not in no_token.cookies
    signed = workbench.client("ent1")
    forged = signed.post("/web/needs", data={"title": "伪造的需求", "csrf_token": "forged"})
    header_ok = signed.post("/web/needs", data={"title": ""}, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403 and header_ok.status_code == 403
    with workbench.services.sessions() as session:
        assert session.scalar(select(NeedRow).where(NeedRow.title == "伪造的需求")) is None


# -- scoping and errors --------------------------------------------------------------------------------------
def test_an_enterprise_sees_only_its_own_needs(workbench: Workbench):
    client = workbench.client("ent1")
    listing = client.get("/web/needs").text
    assert "N1" in listing and "汽车零部件外观缺陷自动检测" not in listing  # N2 is E2's
    for path in ("/web/needs/N2", "/web/needs/N2/edit"):
        response = client.get(path)
        assert response.status_code == 404 and "找不到该页面" in response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "汽车零部件" not in response.text
    marked = post(client, "/web/needs/N2/interest", {"result_id": "R3"})
    assert marked.status_code == 404
    for broker_page in ("/web/dashboard", "/web/results", "/web/shortlist", "/web/upload", "/web/feedback"):
        assert client.get(broker_page).status_code == 403
    feedback = post(client, "/web/feedback", {"need_id": "N1", "result_id": "R1", "outcome": "signed"})
    assert feedback.status_code == 403


def test_unknown_pages_answer_html_under_web_and_json_in_the_api(workbench: Workbench):
    client = workbench.client("broker")
    page = client.get("/web/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert client.get("/web/results/R404").status_code == 404
    assert "没有编号为「R404」的科技成果" in client.get("/web/results/R404").text
    api = client.get("/results/R404", headers=workbench.broker_key)
    assert api.status_code == 404 and api.json() == {"detail": "unknown result id 'R404'"}


# -- enterprise pages ---------------------------------------------------------------------------------------
def test_need_form_checks_each_field_and_stores_nothing_on_error(workbench: Workbench):
    client = workbench.client("ent1")
    bad = post(client, "/web/needs", {"title": " ", "budget": "五十万"}, page="/web/needs/new")
    assert bad.status_code == 422
    assert "请填写需求标题" in bad.text and "预算请填写数字" in bad.text
    good = post(client, "/web/needs", {"title": "电池正极包覆改性提升循环寿命", "description": "三元正极循环衰减快",
                                       "field": "新能源", "budget": "50", "region": "江苏省常州市"},
                page="/web/needs/new")
    assert good.status_code == 303
    need_id = good.headers["location"].rsplit("/", 1)[1]
    page = client.get(good.headers["location"])
    assert page.status_code == 200 and "需求已发布" in page.text
    assert 'id="m-R1"' in page.text  # the obvious result is among the matches
    stored = workbench.app_client.get(f"/needs/{need_id}", headers=workbench.broker_key).json()
    assert stored["enterprise"] == "E1" and stored["enterprise_name"] == "一号电池有限公司"
    assert stored["budget"] == 50 and stored["field"] == "新能源" and stored["industry"] == "新能源汽车"

    edit = post(client, f"/web/needs/{need_id}/edit", {"title": "电池正极包覆改性", "description": "循环寿命",
                                                       "budget": "", "field": "新能源"},
                page=f"/web/needs/{need_id}/edit")
    assert edit.status_code == 303
    stored = workbench.app_client.get(f"/needs/{need_id}", headers=workbench.broker_key).json()
    assert stored["title"] == "电池正极包覆改性" and "budget" not in stored and stored["industry"] == "新能源汽车"


def test_interest_marks_show_to_the_broker(workbench: Workbench):
    enterprise = workbench.client("ent1")
    marked = post(enterprise, "/web/needs/N1/interest", {"result_id": "R1", "interested": "1"},
                  page="/web/needs/N1", headers={"HX-Request": "true"})
    assert marked.status_code == 200 and "已标记感兴趣" in marked.text
    broker = workbench.client("broker")
    assert "企业已标记感兴趣" in broker.get("/web/needs/N1").text
    assert "需求 N1 → 成果 R1" in broker.get("/web/dashboard").text
    post(enterprise, "/web/needs/N1/interest", {"result_id": "R1", "interested": "0"}, page="/web/needs/N1")
    assert "企业已标记感兴趣" not in broker.get("/web/needs/N1").text


# -- broker pages --------------------------------------------------------------------------------------------
def test_feedback_lands_in_the_table_the_api_and_the_learning_read(workbench: Workbench, tmp_path):
    client = workbench.client("broker")
    for outcome, note in (("accepted", "值得推"), ("signed", "已签技术开发合同")):
        response = post(client, "/web/feedback", {"need_id": "N4", "result_id": "R2", "outcome": outcome,
                                                  "note": note}, page="/web/needs/N4",
                        headers={"HX-Request": "true"})
        assert response.status_code == 200 and "已记录" in response.text
    bad = post(client, "/web/feedback", {"need_id": "N4", "result_id": "R2", "outcome": "maybe"}, page="/web/needs/N4")
    assert bad.status_code == 422
    rows = workbench.app_client.get("/feedback", params={"need_id": "N4"}, headers=workbench.broker_key).json()
    outcomes = [(r["outcome"], r["note"]) for r in rows["items"]]
    assert outcomes == [("signed", "已签技术开发合同"), ("accepted", "值得推")]
    from webtools import cli

    out = tmp_path / "feedback.jsonl"
    cli("feedback", "export", "--out", str(out), "--db", workbench.settings.resolved_database_url)
    assert '"outcome": "signed"' in out.read_text(encoding="utf-8")
    page = client.get("/web/feedback").text
    assert "已签技术开发合同" in page and "王经理" in page
    dashboard = client.get("/web/dashboard").text
    assert 'data-testid="funnel-signed"' in dashboard


def test_results_browse_with_filters_and_search(workbench: Workbench):
    client = workbench.client("broker")
    page = client.get("/web/results", params={"field": "新能源", "trl_min": "5", "trl_max": "", "ip_status": ""})
    assert page.status_code == 200 and "R1" in page.text
    api = workbench.app_client.get("/results", params={"field": "新能源", "trl_min": 5},
                                   headers=workbench.broker_key).json()
    assert all(f"/web/results/{r['id']}" in page.text for r in api["items"])
    assert api["total"] >= 1
    bad = client.get("/web/results", params={"trl_min": "8", "trl_max": "2"})
    assert bad.status_code == 200 and "已忽略 TRL 条件" in bad.text
    ranked = client.get("/web/results", params={"q": "高镍三元正极材料包覆"})
    assert ranked.status_code == 200 and ranked.text.index("/web/results/R1") < ranked.text.index("/web/results/R2")
    result = client.get("/web/results/R2")
    assert result.status_code == 200 and "推送清单" in result.text and "/web/needs/N4" in result.text


def test_upload_reports_every_bad_row_and_writes_nothing(workbench: Workbench):
    client = workbench.client("broker")
    bad_csv = ("id,title,abstract,field,trl,ip_status\n"
               "U1,固态电解质薄膜制备,溅射沉积,新能源,5,pending\n"
               "U2,,缺少标题,新能源,4,none\n"
               "U3,光纤光栅温度传感器,变电站测温,电力装备,12,granted\n"
               "U1,重复编号,同上,新能源,3,none\n")
    response = post(client, "/web/upload", {"kind": "result"}, page="/web/upload",
                    files={"file": ("成果.csv", bad_csv.encode("utf-8"), "text/csv")})
    assert response.status_code == 422
    text = response.text
    assert "发现 3 处问题" in text
    assert "第 3 行" in text and "缺失或为空" in text  # row 3: no title
    assert "第 4 行" in text and "必须是 1 到 9 的整数" in text  # row 4: trl 12
    assert "第 5 行" in text and "编号「U1」重复（首次出现在第 2 行）" in text
    assert workbench.app_client.get("/results/U1", headers=workbench.broker_key).status_code == 404

    lenient = post(client, "/web/upload", {"kind": "result", "skip_invalid": "1"}, page="/web/upload",
                   files={"file": ("成果.csv", bad_csv.encode("utf-8"), "text/csv")})
    assert lenient.status_code == 200 and "已导入 1 条科技成果" in lenient.text and "跳过了 3 处问题" in lenient.text
    assert workbench.app_client.get("/results/U1", headers=workbench.broker_key).status_code == 200
    again = post(client, "/web/upload", {"kind": "result", "skip_invalid": "1"}, page="/web/upload",
                 files={"file": ("成果.csv", bad_csv.encode("utf-8"), "text/csv")})
    assert again.status_code == 409 and "编号已存在" in again.text

    book = openpyxl.Workbook()
    book.active.append(["id", "title", "description", "enterprise", "budget"])
    book.active.append(["UN1", "高精度视觉检测冲压件划痕", "替代人工目检", "E2", 30])
    data = io.BytesIO()
    book.save(data)
    excel = post(client, "/web/upload", {"kind": "need"}, page="/web/upload",
                 files={"file": ("需求.xlsx", data.getvalue(), "application/octet-stream")})
    assert excel.status_code == 200 and "已导入 1 条企业需求" in excel.text
    assert workbench.app_client.get("/needs/UN1", headers=workbench.broker_key).json()["budget"] == 30
    wrong_type = post(client, "/web/upload", {"kind": "need"}, page="/web/upload",
                      files={"file": ("需求.pdf", b"%PDF", "application/pdf")})
    assert wrong_type.status_code == 415 and "不支持的文件类型" in wrong_type.text


def test_upload_report_lists_the_rows_that_duplicate_stored_results(workbench: Workbench):
    client = workbench.client("broker")
    rows = ("id,title,abstract,field\n"
            "D1,一种高镍三元正极材料的制备方法。,同一成果再次登记,新能源\n"  # R1's title, one stop added
            "D2,海水淡化反渗透膜的抗污染改性,与已有成果无关,环保\n")
    response = post(client, "/web/upload", {"kind": "result"}, page="/web/upload",
                    files={"file": ("成果.csv", rows.encode("utf-8"), "text/csv")})
    try:
        assert response.status_code == 200 and "已导入 2 条科技成果" in response.text
        table = response.text.split('data-testid="upload-duplicates"', 1)[1].split("</table>", 1)[0]
        assert "其中 1 条与已有科技成果重复或高度相似" in response.text
        assert "D1" in table and "R1" in table and "D2" not in table
    finally:
        for rid in ("D1", "D2"):
            workbench.app_client.delete(f"/results/{rid}", headers=workbench.broker_key)


def test_shortlist_job_shows_progress_then_the_table_and_downloads(workbench: Workbench):
    client = workbench.client("broker")
    assert "还没有短名单" in client.get("/web/shortlist").text
    needs = workbench.app_client.get("/needs", headers=workbench.broker_key).json()["total"]
    started = post(client, "/web/shortlist", {"top": "5"}, page="/web/shortlist")
    assert started.status_code == 303
    with workbench.services.sessions() as session:
        job_id = session.scalar(select(JobRow.id).order_by(JobRow.created_at.desc()))
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        fragment = client.get(f"/web/jobs/{job_id}", headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and 'role="progressbar"' in fragment.text
        with workbench.services.sessions() as session:
            job = get_job(session, job_id)
        seen.append((job.done, job.total))
        if fragment.headers.get("HX-Refresh") == "true":
            break
        time.sleep(0.2)
    assert job.state == "done" and job.percent == 100 and "已完成" in fragment.text
    assert seen == sorted(seen) and job.done == job.total == needs + 5  # every need matched, 5 push lists written

    page = client.get("/web/shortlist")
    assert page.status_code == 200 and page.text.count("/web/results/R") >= 5
    by_trl = client.get("/web/shortlist", params={"sort": "trl", "dir": "desc"}).text
    assert "TRL ▼" in by_trl

    rows = list(csv.DictReader(io.StringIO(client.get("/web/shortlist.csv").text)))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert list(rows[0])[:4] == ["rank", "result_id", "score", "top_need_ids"]  # the contract's columns first
    api = workbench.app_client.get("/shortlist", params={"top": 5}, headers=workbench.broker_key).json()
    assert [r["result_id"] for r in rows] == [r["result_id"] for r in api["items"]]  # the same as GET /shortlist
    excel = client.get("/web/shortlist.xlsx")
    assert excel.headers["content-disposition"].startswith("attachment;")
    book = openpyxl.load_workbook(io.BytesIO(excel.content))
    assert book.sheetnames == ["shortlist", "push"] and book["shortlist"].max_row == 6


def test_a_job_whose_process_died_shows_as_interrupted(workbench: Workbench):
    with workbench.services.sessions() as session:
        session.add(JobRow(id="deadbeef", kind="shortlist", state="running", done=3, total=10, params={"top": 5},
                           heartbeat_at=utcnow() - timedelta(seconds=STALE_SECONDS + 5)))
        session.commit()
    try:
        fragment = workbench.client("broker").get("/web/jobs/deadbeef")
        assert fragment.status_code == 200 and "已中断" in fragment.text
    finally:
        with workbench.services.sessions() as session:
            session.execute(update(JobRow).where(JobRow.id == "deadbeef").values(state="failed"))
            session.commit()


@pytest.mark.parametrize("path", ["/web/dashboard", "/web/needs", "/web/needs/N1", "/web/results",
                                  "/web/results/R1", "/web/shortlist", "/web/feedback", "/web/upload",
                                  "/web/needs/new"])
def test_every_broker_page_renders(workbench: Workbench, path: str):
    response = workbench.client("broker").get(path)
    assert response.status_code == 200, response.text[:500]
    assert "<title>" in response.text and 'name="csrf_token"' in response.text


def test_pages_on_both_databases(any_workbench: Workbench):
    """The dashboard's counts (a JSON field grouped in SQL) and the pages a write goes through, on SQLite and
    PostgreSQL."""
    client = any_workbench.client("broker")
    post(client, "/web/feedback", {"need_id": "N1", "result_id": "R1", "outcome": "contacted"}, page="/web/needs/N1")
    dashboard = client.get("/web/dashboard")
    assert dashboard.status_code == 200
    assert '<span class="stage-value">4</span>' in dashboard.text  # needs
    assert '<span class="stage-value">8</span>' in dashboard.text  # results
    with any_workbench.services.sessions() as session:
        assert session.scalar(select(FeedbackRow.outcome)) == "contacted"
    enterprise = any_workbench.client("ent1")
    created = post(enterprise, "/web/needs", {"title": "电池正极材料", "field": "新能源"}, page="/web/needs/new")
    assert created.status_code == 303 and enterprise.get(created.headers["location"]).status_code == 200


def test_match_page_shows_the_grade_once_a_grader_is_installed(workbench: Workbench):
    from recommender.learning.training import train_grader
    from recommender.records import load_needs
    from tests.test_learning import fixture_qrels

    client = workbench.client("broker")
    assert "评级" not in client.get("/web/needs/N3").text  # no grader: no grade shown
    engine = workbench.services.engine
    grader = train_grader(engine.matcher.results, load_needs(FIXTURES / "needs.jsonl"), fixture_qrels(), seed=0)
    engine.matcher.grader = grader  # as a restart after 'techmatch train' would load it
    try:
        page = client.get("/web/needs/N3").text
    finally:
        engine.matcher.grader = None
    assert page.count('class="badge grade-') == page.count('data-testid="match"') >= 8  # every match graded
    assert 'data-testid="grade-label"' in page and "把握 " in page  # the label and its probability, in words
    assert any(label in page for label in ("强相关 ·", "较强相关 ·", "弱相关 ·"))
