"""Relevance feedback on a need's match list in a real browser (Chromium, a real ``techmatch serve``): a
broker's 相关 / 不相关 re-ranks the rest of the list at once (htmx), the page says so, the API agrees, and an
enterprise user cannot judge another enterprise's need (it answers like a missing one)."""

from __future__ import annotations

import httpx
import pytest
from webtools import sign_in

pytestmark = pytest.mark.browser


def _ids(page) -> list[str]:
    return [m.get_attribute("id").removeprefix("m-") for m in page.locator("[data-testid=match]").all()]


def test_a_judgement_re_ranks_the_list_and_the_page_says_so(site, page, browser):
    with httpx.Client(base_url=site.base, headers={"X-API-Key": site.logins.api_key}, timeout=60) as client:
        needs = client.get("/needs", params={"limit": 200}).json()["items"]
        created = client.post("/needs", json={  # a need of the enterprise that nobody has judged yet
            "id": "NRF1", "title": "动力电池正极材料循环寿命提升", "enterprise": site.logins.enterprise_id,
            "description": "三元锂电池正极材料循环衰减快，希望循环1000次容量保持率大于90%。"})
        assert created.status_code == 201, created.text
        need_id = "NRF1"
        other = next(n["id"] for n in needs if n.get("enterprise") not in (None, site.logins.enterprise_id))
    sign_in(page, site.base, site.logins.broker)
    page.goto(f"{site.base}/web/needs/{need_id}")
    before = _ids(page)
    assert page.locator("[data-testid=reranked]").count() == 0
    page.locator(f"[data-testid=irrelevant-{before[0]}]").click()
    page.locator("[data-testid=reranked]").wait_for()
    assert "已根据 1 条反馈重排" in page.locator("[data-testid=reranked]").inner_text()
    page.locator(f"[data-testid=relevant-{before[3]}]").click()
    # a locator, not wait_for_function: its string predicate is eval'd in the page, which the policy forbids
    page.locator("[data-testid=reranked]", has_text="2 条").wait_for()
    after = _ids(page)
    assert before[0] not in after and before[3] not in after and len(after) == len(before)
    assert after != [i for i in before if i not in (before[0], before[3])]  # re-ranked, not only filtered
    with httpx.Client(base_url=site.base, headers={"X-API-Key": site.logins.api_key}, timeout=60) as client:
        api = client.get(f"/needs/{need_id}/matches", params={"k": len(after)}).json()
    assert api["judgements"] == 2 and [m["id"] for m in api["matches"]] == after
    page.reload()
    assert _ids(page) == after and "已根据 2 条反馈重排" in page.locator("[data-testid=reranked]").inner_text()

    context = browser.new_context(locale="zh-CN")
    page = context.new_page()  # the enterprise judges its own need, never another's
    sign_in(page, site.base, site.logins.enterprise)
    page.goto(f"{site.base}/web/needs/{need_id}")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    form = {"csrf_token": token, "result_id": after[0], "judgement": "irrelevant"}
    foreign = page.request.post(f"{site.base}/web/needs/{other}/judge", form=form, max_redirects=0)
    missing = page.request.post(f"{site.base}/web/needs/NOPE-404/judge", form=form, max_redirects=0)
    assert foreign.status == missing.status == 404
    own = page.request.post(f"{site.base}/web/needs/{need_id}/judge", form=form, max_redirects=0)
    assert own.status == 303
    context.close()
