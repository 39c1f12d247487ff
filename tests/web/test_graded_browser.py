"""A broker's list in a real browser (headless Chromium via Playwright) with a grader installed and a result
registered twice: one card for the pair, the twin folded under it, and the grade label as the card's headline.

The app is the fixture world's (``workbench``) served by a real uvicorn server on a thread; the grader is
trained on the fixture judgements, as ``techmatch train`` would, and installed the way a restart loads it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from conftest import FIXTURES, PASSWORD, Workbench
from webtools import free_port, sign_in

pytestmark = pytest.mark.browser

NEED = "N3"


@pytest.fixture(scope="module")
def graded_site(workbench: Workbench) -> Iterator[tuple[str, str, str]]:
    """(base URL, the need's top result id, its twin's id) with a grader installed and the twin stored."""
    from recommender.learning.training import train_grader
    from recommender.records import load_needs
    from tests.test_learning import fixture_qrels

    client = workbench.app_client
    top = client.get(f"/needs/{NEED}/matches", params={"k": 1}, headers=workbench.broker_key).json()["matches"][0]
    twin = {k: v for k, v in top["record"].items() if k != "updated_at"}
    twin |= {"id": f"{top['id']}-dup", "title": top["title"] + "。"}  # the same work registered again
    written = client.post("/results/bulk", json=[twin], headers=workbench.broker_key)
    assert written.status_code == 201 and written.json()["duplicates_of_existing"] == {twin["id"]: [top["id"]]}
    engine = workbench.services.engine
    engine.matcher.grader = train_grader(engine.matcher.results, load_needs(FIXTURES / "needs.jsonl"),
                                         fixture_qrels(), seed=0)
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=free_port(), lifespan="off",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.config.port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "uvicorn did not start"
    try:
        assert httpx.get(f"{base}/web/login", timeout=10).status_code == 200
        yield base, top["id"], twin["id"]
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        engine.matcher.grader = None


def test_one_card_for_a_duplicate_pair_with_the_grade_label_as_headline(graded_site, page):
    base, top, twin = graded_site
    sign_in(page, base, ("broker", PASSWORD))
    page.goto(f"{base}/web/needs/{NEED}")
    cards = page.locator("[data-testid=match]")
    ids = [c.get_attribute("id") for c in cards.all()]
    assert ids[0] == f"m-{top}" and f"m-{twin}" not in ids  # one card for the group
    first = cards.first
    fold = first.locator("[data-testid=duplicates]")
    assert fold.locator("summary").inner_text() == "另有 1 条相似成果"
    assert not fold.locator("[data-testid=duplicate]").is_visible()  # folded until opened
    fold.locator("summary").click()
    assert twin in fold.locator("[data-testid=duplicate]").inner_text()
    # the grader's label and its probability are the headline, the signal agreement is not shown
    label = first.locator("[data-testid=grade-label]")
    assert label.is_visible()
    text = label.inner_text()
    assert text.split(" · ")[0] in ("不相关", "弱相关", "较强相关", "强相关") and "把握 " in text and text.endswith("%")
    assert first.locator("[data-testid=agreement]").count() == 0
    assert cards.locator("[data-testid=grade-label]").count() == cards.count()  # every card graded
