"""Review campaigns in a real browser (Chromium, a real ``techmatch serve`` over the tiny demo; issue 20): two brokers
review one small campaign to the end at the same time, neither is ever shown a result the other holds or one
already decided; the estimate of recall and the gain curve appear; a restart keeps every decision; an enterprise
session or key reaches no campaign page or route."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from webtools import cli, sign_in

pytestmark = pytest.mark.browser
SECOND_BROKER = ("review-broker-2", "qinling-review-desk-47")


def _small_institution(base: str, key: str) -> tuple[str, int]:
    """An institution of the demo with a handful of results: a campaign short enough to read to the end."""
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
        rows = client.get("/results", params={"limit": 500}).json()["items"]
    counts = Counter(r.get("institution") for r in rows if r.get("institution"))
    name, size = min(((n, c) for n, c in counts.items() if 4 <= c <= 8), key=lambda nc: (nc[1], nc[0]))
    return name, size


def _shown(page) -> str | None:
    """The result the page shows for reading, or None when it says there is nothing (left) for this broker."""
    page.wait_for_selector("[data-testid=review-result], [data-testid=review-done]")
    card = page.locator("[data-testid=review-result]")
    return card.get_attribute("data-result-id") if card.count() else None


def test_two_brokers_review_a_campaign_to_the_end_and_a_restart_keeps_it(site, browser):
    cli("users", "create", "--username", SECOND_BROKER[0], "--password", SECOND_BROKER[1], "--role", "broker",
        "--name", "李经理", "--exist-ok", "--home", str(site.home))
    institution, size = _small_institution(site.base, site.logins.api_key)
    first = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    second = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    pa, pb = first.new_page(), second.new_page()
    for p in (pa, pb):
        p.set_default_timeout(60_000)
    sign_in(pa, site.base, site.logins.broker)
    sign_in(pb, site.base, SECOND_BROKER)
    pa.goto(f"{site.base}/web/campaigns")
    pa.fill("form[data-testid=new-campaign] input[name=name]", "浏览器评审测试")
    pa.select_option("form[data-testid=new-campaign] select[name=scope]", "institution")
    pa.fill("form[data-testid=new-campaign] input[name=value]", institution)
    pa.click("form[data-testid=new-campaign] button[type=submit]")
    pa.wait_for_url("**/review")
    campaign = pa.url.rsplit("/", 2)[-2]
    a = _shown(pa)  # the page waits for the first build of the model (progress bar), then shows a result
    pb.goto(f"{site.base}/web/campaigns/{campaign}/review")
    b = _shown(pb)
    decided: list[str] = []
    turn = 0
    while a is not None or b is not None:
        assert a != b, f"both brokers were shown {a}"
        assert a not in decided and b not in decided, (a, b, decided)  # nothing decided is shown again
        if a is not None:  # the first broker uses the keyboard, with a note on the first decision
            if turn == 0:
                pa.keyboard.press("n")
                pa.keyboard.type("样机已在企业试用")
                pa.keyboard.press("Escape")
            with pa.expect_navigation():
                pa.keyboard.press("1" if turn % 2 == 0 else "2")
            decided.append(a)
            a = _shown(pa)
        if b is not None:  # the second one clicks
            with pb.expect_navigation():
                pb.click("[data-testid=decide-skip]" if turn == 1 else "[data-testid=decide-not]")
            decided.append(b)
            b = _shown(pb)
        if a is None and b is None:  # the last ones were held by the other: look again now they are decided
            a, b = _shown_after_reload(pa), _shown_after_reload(pb)
        turn += 1
    assert sorted(decided) == sorted(set(decided)) and len(decided) == size
    assert "全部成果都已评审完毕" in pa.locator("[data-testid=review-done]").inner_text()

    pa.click("[data-testid=progress-link]")
    pa.wait_for_selector("[data-testid=gain-curve] polyline.found")
    assert pa.locator("[data-testid=decided]").inner_text().startswith(str(size))
    pa.wait_for_selector("[data-testid=recall]")  # the estimate, once the last refit is in
    assert "%" in pa.locator("[data-testid=recall]").inner_text()
    assert "95% 区间" in pa.locator("[data-testid=estimate]").inner_text()
    assert "拐点法" in pa.locator("[data-testid=method]").inner_text()
    assert "全部成果已评审完毕" in pa.locator("[data-testid=stop]").inner_text()
    assert pa.locator("[data-testid=decision-row]").count() == size
    assert "样机已在企业试用" in pa.locator("[data-testid=decisions]").inner_text()
    with httpx.Client(base_url=site.base, headers={"X-API-Key": site.logins.api_key}, timeout=60) as client:
        before = client.get(f"/campaigns/{campaign}/decisions", params={"limit": 500}).json()
    assert before["total"] == size
    first.close()
    second.close()

    site.restart()  # a new server process on the same home: every decision is still there
    with httpx.Client(base_url=site.base, headers={"X-API-Key": site.logins.api_key}, timeout=60) as client:
        after = client.get(f"/campaigns/{campaign}/decisions", params={"limit": 500}).json()
        assert after == before
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    sign_in(page, site.base, site.logins.broker)
    page.goto(f"{site.base}/web/campaigns/{campaign}")
    assert page.locator("[data-testid=decided]").inner_text().startswith(str(size))
    assert page.locator("[data-testid=decision-row]").count() == size
    context.close()


def _shown_after_reload(page) -> str | None:
    page.reload()
    return _shown(page)


def test_an_enterprise_session_or_key_reaches_no_campaign(site, page):
    with httpx.Client(base_url=site.base, headers={"X-API-Key": site.logins.api_key}, timeout=60) as client:
        made = client.post("/campaigns", json={"name": "企业不可见", "scope": "all"})
        assert made.status_code == 201, made.text
    campaign = made.json()["id"]
    key = cli("keys", "create", "--role", "enterprise", "--enterprise", site.logins.enterprise_id,
              "--home", str(site.home)).split()[-1]
    with httpx.Client(base_url=site.base, headers={"X-API-Key": key}, timeout=60) as client:
        forbidden = client.get("/shortlist").json()  # what any broker route answers an enterprise key
        answers = [client.get("/campaigns"), client.post("/campaigns", json={"name": "x", "scope": "all"}),
                   client.get(f"/campaigns/{campaign}"), client.post(f"/campaigns/{campaign}/next"),
                   client.post(f"/campaigns/{campaign}/decisions", json={"result_id": "R000001", "decision": "skip"}),
                   client.get(f"/campaigns/{campaign}/decisions")]
    assert [r.status_code for r in answers] == [403] * len(answers)
    assert all(r.json() == forbidden for r in answers)
    sign_in(page, site.base, site.logins.enterprise)
    assert "评审任务" not in page.locator("nav.nav").inner_text()
    for path in ("/web/campaigns", f"/web/campaigns/{campaign}", f"/web/campaigns/{campaign}/review",
                 f"/web/campaigns/{campaign}/model", f"/web/campaigns/{campaign}/export.csv"):
        response = page.goto(f"{site.base}{path}")
        assert response.status == 403, path
        assert "仅供技术经理人" in page.content()
    page.goto(f"{site.base}/web/needs")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for path, form in ((f"/web/campaigns/{campaign}/decide", {"result_id": "R000001", "decision": "skip"}),
                       ("/web/campaigns", {"name": "x", "scope": "all"})):
        answer = page.request.post(f"{site.base}{path}", form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 403, path
    with httpx.Client(base_url=site.base, headers={"X-API-Key": site.logins.api_key}, timeout=60) as client:
        assert client.get(f"/campaigns/{campaign}/decisions").json()["total"] == 0  # nothing was written
        assert client.get("/campaigns", params={"limit": 500}).json()["total"] >= 1
