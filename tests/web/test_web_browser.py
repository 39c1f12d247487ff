"""The workbench in a real browser (headless Debian Chromium via Playwright) against a real ``techmatch serve``
over the tiny demo world: what an enterprise engineer and a broker actually do."""

from __future__ import annotations

import httpx
import pytest
from webtools import sign_in, tour

pytestmark = pytest.mark.browser


def api(site) -> httpx.Client:
    """The API of the same server, with the broker key the demo home was given."""
    return httpx.Client(base_url=site.base, headers={"X-API-Key": site.logins.api_key}, timeout=60)


def test_enterprise_signs_in_submits_a_need_and_sees_its_matches(site, page):
    sign_in(page, site.base, site.logins.enterprise)
    assert page.url.endswith("/web/needs")
    assert page.locator("h1").inner_text() == "我的需求"
    page.click("text=＋ 发布新需求")
    page.fill("input[name=title]", "储能电站锂电池热失控早期预警")
    page.fill("textarea[name=description]",
              "我公司运营工商业储能电站，电池簇热失控预警滞后；预期目标：提前10分钟预警，误报率低于1%。")
    page.fill("input[name=field]", "储能")
    page.fill("input[name=budget]", "80")
    page.fill("input[name=region]", "广东省深圳市")
    page.click("form.form button[type=submit]")
    page.wait_for_selector("[data-testid=match]")

    assert "/web/needs/NW" in page.url  # the new need's own page
    need_id = page.url.rsplit("/", 1)[1]
    assert page.locator(".notice.ok").inner_text().startswith("需求已发布")
    matches = page.locator("[data-testid=match]")
    assert matches.count() == 10
    first = matches.first
    assert first.locator(".score-num").text_content().startswith("0.")  # the raw score, folded away
    assert "路信号一致" in first.locator("[data-testid=agreement]").inner_text()  # the headline without a grader
    assert first.locator(".sig").count() == 3  # each signal's rank: 语义, 关键词, 字词
    assert first.locator(".term").count() >= 1  # shared key terms...
    term = first.locator(".term").first.inner_text()
    for side in (0, 1):  # ...marked in the need's text and in the result's
        marks = first.locator("details .compare > div").nth(side).locator("mark").all_inner_texts()
        assert any(term in mark for mark in marks), (term, marks)

    first.locator("form.interest button").click()  # htmx swaps in the marked button
    first.locator("button.marked").wait_for()
    page.reload()
    assert "已标记感兴趣" in page.locator("[data-testid=match]").first.locator("form.interest button").inner_text()

    with api(site) as client:  # the same need, stored for this enterprise, through the API
        stored = client.get(f"/needs/{need_id}").json()
    assert stored["enterprise"] == site.logins.enterprise_id and stored["budget"] == 80
    page.goto(f"{site.base}/web/needs")
    assert page.locator(f"text={need_id}").count() == 1


def test_broker_dashboard_and_one_click_feedback_reach_the_feedback_api(site, page):
    sign_in(page, site.base, site.logins.broker)
    assert page.url.endswith("/web/dashboard")
    with api(site) as client:
        needs_total = client.get("/needs", params={"limit": 1}).json()["total"]
        need_id = client.get("/needs", params={"limit": 1}).json()["items"][0]["id"]
    assert page.locator("[data-testid=funnel-needs] .stage-value").inner_text() == f"{needs_total:,}"
    assert page.locator("[data-testid=funnel-results] .stage-value").inner_text() == "300"
    contacted_before = int(page.locator("[data-testid=funnel-contacted] .stage-value").inner_text())

    page.goto(f"{site.base}/web/needs/{need_id}")
    match = page.locator("[data-testid=match]").nth(1)
    result_id = match.get_attribute("id").removeprefix("m-")
    match.locator("input[name=note]").fill("已与企业技术总监通话")
    match.locator("button[value=contacted]").click()
    match.locator(".latest.saved").wait_for()
    assert "已联系" in match.locator(".latest").inner_text()

    with api(site) as client:
        rows = client.get("/feedback", params={"need_id": need_id, "result_id": result_id}).json()["items"]
    assert [(r["outcome"], r["note"]) for r in rows] == [("contacted", "已与企业技术总监通话")]
    assert rows[0]["key_id"].startswith("user:")
    page.goto(f"{site.base}/web/dashboard")
    assert int(page.locator("[data-testid=funnel-contacted] .stage-value").inner_text()) == contacted_before + 1


def test_enterprise_user_cannot_open_another_enterprises_need(site, page):
    with api(site) as client:
        others = [n for n in client.get("/needs", params={"limit": 200}).json()["items"]
                  if n.get("enterprise") != site.logins.enterprise_id]
    sign_in(page, site.base, site.logins.enterprise)
    for path in (f"/web/needs/{others[0]['id']}", f"/web/needs/{others[0]['id']}/edit"):
        response = page.goto(site.base + path)
        assert response.status == 404
        assert page.locator("h1").inner_text() == "找不到该页面"
        assert others[0]["title"] not in page.content()
    response = page.goto(f"{site.base}/web/dashboard")  # a broker page
    assert response.status == 403 and page.locator("h1").inner_text() == "没有权限"


def test_a_form_without_its_csrf_token_is_refused(site, page):
    sign_in(page, site.base, site.logins.enterprise)
    with api(site) as client:
        before = client.get("/needs", params={"enterprise": site.logins.enterprise_id}).json()["total"]
    page.goto(f"{site.base}/web/needs/new")
    page.fill("input[name=title]", "没有令牌的表单不应被接受")
    page.evaluate("document.querySelector('form.form input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.url.endswith("/web/needs") and r.request.method == "POST") as answer:
        page.click("form.form button[type=submit]")
    assert answer.value.status == 403
    assert page.locator("h1").inner_text() == "表单已失效，操作未执行"
    with api(site) as client:
        assert client.get("/needs", params={"enterprise": site.logins.enterprise_id}).json()["total"] == before


def test_the_main_pages_render_for_both_roles(site, browser, tmp_path):
    """The screenshot tour (scripts/screenshots.py runs it on the small demo for docs/screenshots): every page
    answers, the shortlist job runs to its table, and an upload with bad rows gets its per-row report."""
    with api(site) as client:
        need_id = client.get("/needs", params={"limit": 1}).json()["items"][0]["id"]
        result_id = client.get("/results", params={"limit": 1}).json()["items"][0]["id"]
    shots = tour(browser, site.base, site.logins, tmp_path / "shots", need_id, result_id)
    assert len(shots) == 12
    assert all(status == 200 for name, status in shots if name != "11-broker-upload-report")
    assert all((tmp_path / "shots" / f"{name}.png").stat().st_size > 10_000 for name, _ in shots)


def test_a_list_with_duplicates_shows_one_card_with_its_folded_members(site, page):
    with api(site) as client:
        need_id = client.get("/needs", params={"limit": 1}).json()["items"][0]["id"]
        top = client.get(f"/needs/{need_id}/matches", params={"k": 1}).json()["matches"][0]
        twin = {k: v for k, v in top["record"].items() if k not in ("updated_at",)}
        twin |= {"id": top["id"] + "-dup", "title": top["title"] + "。"}  # registered again, one stop added
        written = client.post("/results/bulk", json=[twin])
        assert written.status_code == 201, written.text
        assert written.json()["duplicates_of_existing"] == {twin["id"]: [top["id"]]}
    try:
        sign_in(page, site.base, site.logins.broker)
        page.goto(f"{site.base}/web/needs/{need_id}")
        cards = page.locator("[data-testid=match]")
        ids = [c.get_attribute("id") for c in cards.all()]
        assert ids[0] == f"m-{top['id']}" and f"m-{twin['id']}" not in ids  # one card for the group
        fold = cards.first.locator("[data-testid=duplicates]")
        assert fold.locator("summary").inner_text() == "另有 1 条相似成果"
        assert not fold.locator("[data-testid=duplicate]").is_visible()  # folded until opened
        fold.locator("summary").click()
        member = fold.locator("[data-testid=duplicate]")
        assert member.is_visible() and twin["id"] in member.inner_text()
        assert page.locator("[data-testid=duplicates]").count() == 1
    finally:
        with api(site) as client:
            assert client.delete(f"/results/{twin['id']}").status_code == 204
