"""Review campaigns through the API (issue 20): a campaign over the fixture world is read to the end by two brokers
who are never given the same result, every decision is audited and survives a restart, holds are atomic under
concurrent pickers, and bad input gets a 4xx that says what is wrong. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from conftest import ServiceHarness, fixture_rows
from sqlalchemy import select, update

from service.core.models import AuditRow, CampaignHoldRow, utcnow


@pytest.fixture
def db_url(db_url: str, request: pytest.FixtureRequest) -> str:
    if request.node.callspec.params.get("db_url") == "milvus":
        pytest.skip("campaigns do not depend on the ANN backend: covered by the sqlite case")
    return db_url


def _load(harness: ServiceHarness, client) -> dict[str, str]:
    broker = harness.key()
    assert client.post("/results/bulk", json=fixture_rows("result"), headers=broker).status_code == 201
    assert client.post("/needs/bulk", json=fixture_rows("need"), headers=broker).status_code == 201
    return broker


def _ready(client, key, campaign_id: int, decisions: int = 0) -> dict:
    """The campaign once its model has learnt from ``decisions`` decisions (the refit runs in the background)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/campaigns/{campaign_id}", headers=key).json()
        if body["model"]["state"] == "ready" and body["model"]["decisions_learnt"] >= decisions:
            return body
        assert body["model"]["state"] != "failed", body
        time.sleep(0.05)
    raise AssertionError(f"campaign {campaign_id}'s model did not become ready: {body}")


def _next(client, key, campaign_id: int, k: int = 1) -> list[str]:
    response = client.post(f"/campaigns/{campaign_id}/next", params={"k": k}, headers=key)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


def test_two_brokers_review_a_campaign_to_the_end_and_a_restart_keeps_it(harness: ServiceHarness):
    with harness.running() as client:
        a = _load(harness, client)
        b = harness.key()
        made = client.post("/campaigns", json={"name": "全部成果评审", "scope": "all"}, headers=a)
        assert made.status_code == 201, made.text
        cid, pool = made.json()["id"], made.json()["pool_size"]
        assert pool == 8 and made.json()["progress"]["decided"] == 0
        first = _ready(client, a, cid)
        assert first["progress"]["estimate"] is None  # nothing found yet: nothing to estimate from
        seen_a, seen_b, decided = [], [], []
        labels = {"R1": "transferable", "R2": "transferable", "R3": "not_transferable"}
        while True:
            got_a, got_b = _next(client, a, cid), _next(client, b, cid)
            assert _next(client, a, cid) == got_a  # asking again gives the same held result
            assert not set(got_a) & set(got_b), (got_a, got_b)  # never the same result to both
            if not got_a and not got_b:
                break
            for key, got, seen in ((a, got_a, seen_a), (b, got_b, seen_b)):
                for rid in got:
                    seen.append(rid)
                    decision = labels.get(rid, "skip" if rid == "R8" else "not_transferable")
                    answer = client.post(f"/campaigns/{cid}/decisions", headers=key,
                                         json={"result_id": rid, "decision": decision, "note": "样机已验证"})
                    assert answer.status_code == 201, answer.text
                    decided.append(rid)
        assert sorted(decided) == sorted(r["id"] for r in fixture_rows("result"))
        assert len(decided) == len(set(decided))  # nobody read a result twice
        assert seen_a and seen_b  # both read
        status = _ready(client, a, cid, decisions=8)
        progress = status["progress"]
        assert (progress["decided"], progress["found"], progress["skipped"], progress["remaining"]) == (8, 2, 1, 0)
        assert progress["gains"][-1] == 2 and len(progress["gains"]) == 7
        assert progress["stop"] and "every result" in progress["stop_reason"] and "knee" in progress["method"]
        estimate = progress["estimate"]
        assert 0 <= estimate["recall_low"] <= estimate["recall"] <= estimate["recall_high"] <= 1
        done = client.post(f"/campaigns/{cid}/next", headers=a).json()
        assert done["done"] and done["items"] == []
        with harness.services.sessions() as session:
            actions = [r.action for r in session.scalars(select(AuditRow).order_by(AuditRow.id))]
        assert actions.count("campaign.create") == 1 and actions.count("review.decision") == 8
        listed = client.get(f"/campaigns/{cid}/decisions", headers=a).json()
    with harness.running() as client:  # a new process on the same database: every decision is there
        again = client.get(f"/campaigns/{cid}/decisions", headers=a).json()
        assert again == listed and again["total"] == 8
        assert _ready(client, a, cid, decisions=8)["progress"]["found"] == 2
        assert client.get("/campaigns", headers=a).json()["items"][0]["id"] == cid


def test_concurrent_pickers_never_share_a_result_and_an_expired_hold_is_free_again(harness: ServiceHarness):
    with harness.running() as client:
        broker = _load(harness, client)
        keys = [harness.key() for _ in range(4)]
        cid = client.post("/campaigns", json={"name": "并发", "scope": "all"}, headers=broker).json()["id"]
        _ready(client, broker, cid)
        with ThreadPoolExecutor(4) as pool:  # four readers ask for two results each at the same moment
            picks = list(pool.map(lambda key: _next(client, key, cid, 2), keys))
        flat = [rid for got in picks for rid in got]
        assert len(flat) == 8 and len(set(flat)) == 8, picks
        assert _next(client, broker, cid) == []  # everything is held by someone
        with harness.services.sessions() as session:  # the first reader walked away: their holds run out
            session.execute(update(CampaignHoldRow).where(CampaignHoldRow.holder.contains(
                keys[0]["X-API-Key"].split("_")[1])).values(until=utcnow() - timedelta(seconds=1)))
            session.commit()
        assert sorted(_next(client, broker, cid, 5)) == sorted(picks[0])


def test_bad_input_and_enterprise_keys(harness: ServiceHarness):
    with harness.running() as client:
        broker = _load(harness, client)
        enterprise = harness.key("enterprise", "E1")
        for body, status in (({"name": "x", "scope": "galaxy"}, 422), ({"name": "  ", "scope": "all"}, 422),
                             ({"name": "x", "scope": "field"}, 422), ({"name": "x"}, 422),
                             ({"name": "x", "scope": "field", "value": "没有这个领域"}, 409),
                             ({"name": "x", "scope": "since", "value": "yesterday"}, 422),
                             ({"name": "x", "scope": "since", "value": "2999-01-01"}, 409)):
            answer = client.post("/campaigns", json=body, headers=broker)
            assert answer.status_code == status and answer.json()["detail"], (body, answer.text)
        field = fixture_rows("result")[0]["field"]
        made = client.post("/campaigns", json={"name": "一个领域", "scope": "field", "value": field}, headers=broker)
        assert made.status_code == 201 and 0 < made.json()["pool_size"] < 8
        cid = made.json()["id"]
        outside = next(r["id"] for r in fixture_rows("result") if r.get("field") != field)
        for body, status in (({"result_id": outside, "decision": "transferable"}, 404),
                             ({"result_id": "R1", "decision": "maybe"}, 422)):
            answer = client.post(f"/campaigns/{cid}/decisions", json=body, headers=broker)
            assert answer.status_code == status and answer.json()["detail"], answer.text
        assert client.get("/campaigns/999999", headers=broker).status_code == 404
        assert client.post(f"/campaigns/{cid}/next", params={"k": 0}, headers=broker).status_code == 422
        refused = [client.post("/campaigns", json={"name": "x", "scope": "all"}, headers=enterprise),
                   client.get("/campaigns", headers=enterprise), client.get(f"/campaigns/{cid}", headers=enterprise),
                   client.post(f"/campaigns/{cid}/next", headers=enterprise),
                   client.post(f"/campaigns/{cid}/decisions", json={"result_id": "R1", "decision": "skip"},
                               headers=enterprise),
                   client.get(f"/campaigns/{cid}/decisions", headers=enterprise)]
        plain = client.get("/shortlist", headers=enterprise)  # the answer of any forbidden broker route
        assert plain.status_code == 403
        assert all(r.status_code == 403 and r.json() == plain.json() for r in refused), [r.text for r in refused]
