"""Ids that leak nothing (issue 23, item 3): an id another enterprise holds answers exactly like an id that does
not exist, on the API and on the pages, for reading, changing, deleting and creating; writes never touch the
other owner's record; an omitted id is assigned by the server; clients that send ids keep working.

The fixture's needs: N1 and N4 belong to E1, N2 to E2, N3 to E3; N9 exists nowhere (same length as N2, so even
the answers' lengths agree)."""

from __future__ import annotations

import re

import pytest
from conftest import ServiceHarness
from fastapi.testclient import TestClient

from service.core.accounts import create_user

TAKEN, MISSING = "N2", "N9"  # E2's need, and no one's
STAMPS = re.compile(r'"(created_at|updated_at)":"[^"]*"')


@pytest.fixture
def db_url(db_url: str, request: pytest.FixtureRequest) -> str:
    if request.node.callspec.params.get("db_url") == "milvus":
        pytest.skip("ids do not depend on the ANN backend: covered by the sqlite case")
    return db_url


def _alike(taken, missing) -> None:
    """The same status, headers and body, once the one id is put for the other (and write times dropped)."""
    assert taken.status_code == missing.status_code, (taken.text, missing.text)
    assert STAMPS.sub("", taken.text.replace(TAKEN, MISSING)) == STAMPS.sub("", missing.text)
    drop = {"date", "set-cookie", "location", "hx-redirect", "x-request-id"}  # a request id is new each time
    assert ({k: v for k, v in taken.headers.items() if k not in drop}
            == {k: v for k, v in missing.headers.items() if k not in drop})


def _signed_in(app, username: str) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/web/login").text).group(1)
    assert client.post("/web/login", data={"username": username, "password": "correct-horse-9",
                                           "csrf_token": token}).status_code == 303
    return client


def test_another_enterprises_id_answers_like_a_missing_one(harness: ServiceHarness, loaded):
    client, broker = loaded
    e1 = harness.key("enterprise", "E1")
    e2_before = client.get(f"/needs/{TAKEN}", headers=broker).json()

    def both(method: str, path: str, **kw):
        return (client.request(method, path.format(id=TAKEN), headers=e1, **kw),
                client.request(method, path.format(id=MISSING), headers=e1, **kw))

    for method, path, kw in [
        ("GET", "/needs/{id}", {}), ("GET", "/needs/{id}/matches", {"params": {"k": 3}}),
        ("PUT", "/needs/{id}", {"json": {"title": "改掉别人的需求"}}), ("DELETE", "/needs/{id}", {}),
        ("POST", "/needs/{id}/judgements", {"json": {"result_id": "R1", "judgement": "irrelevant"}}),
    ]:
        taken, missing = both(method, path, **kw)
        assert taken.status_code == 404, (method, path, taken.text)
        _alike(taken, missing)

    # Creating under the taken id answers exactly as under a free one: E1 gets a need of its own it knows as N2
    taken = client.post("/needs", headers=e1, json={"id": TAKEN, "title": "电池包热失控预警"})
    missing = client.post("/needs", headers=e1, json={"id": MISSING, "title": "电池包热失控预警"})
    assert taken.status_code == 201 and taken.json()["id"] == TAKEN and taken.json()["enterprise"] == "E1"
    _alike(taken, missing)
    again = both("POST", "/needs", json={"title": "再来一次"})  # no id: both assigned, not a conflict
    assert [r.status_code for r in again] == [201, 201]
    taken, missing = (client.post("/needs", headers=e1, json={"id": i, "title": "重复"}) for i in (TAKEN, MISSING))
    assert taken.status_code == 409  # now E1's own, like any id it holds
    _alike(taken, missing)
    assert client.delete(f"/needs/{MISSING}", headers=e1).status_code == 204  # N9 is no one's again

    # E1 works on its N2 by that name; E2's N2 is never touched, and E2 still sees only its own
    assert client.get(f"/needs/{TAKEN}/matches", headers=e1, params={"k": 2}).json()["query"]["id"] == TAKEN
    assert client.put(f"/needs/{TAKEN}", headers=e1, json={"title": "电池包热失控早期预警"}).status_code == 200
    judged = client.post(f"/needs/{TAKEN}/judgements", headers=e1, json={"result_id": "R1", "judgement": "relevant"})
    assert judged.status_code == 200 and judged.json()["query"]["id"] == TAKEN
    listed = {n["id"]: n["title"] for n in client.get("/needs", headers=e1).json()["items"]}
    assert listed[TAKEN] == "电池包热失控早期预警" and {"N1", "N4"} <= set(listed)
    e2 = harness.key("enterprise", "E2")
    assert client.get(f"/needs/{TAKEN}", headers=e2).json() == e2_before
    assert client.get(f"/needs/{TAKEN}", headers=broker).json() == e2_before  # brokers: stored ids
    mine = [n for n in client.get("/needs", headers=broker, params={"limit": 100}).json()["items"]
            if n["title"] == "电池包热失控早期预警"]
    assert len(mine) == 1 and mine[0]["id"].startswith("NW") and mine[0]["enterprise"] == "E1"
    # bulk and replace follow the same rule; the bulk answer lists the ids as the caller knows them
    bulk = client.post("/needs/bulk", headers=e1, params={"replace": "true"},
                       json=[{"id": "N3", "title": "饲料减抗"}, {"id": TAKEN, "title": "换掉自己的"},
                             {"title": "无编号"}])
    assert bulk.status_code == 201, bulk.text
    ids = bulk.json()["ids"]
    assert ids[:2] == ["N3", TAKEN] and ids[2].startswith("NW")
    assert client.get("/needs/N3", headers=broker).json()["enterprise"] == "E3"  # E3's untouched
    assert client.get(f"/needs/{TAKEN}", headers=e1).json()["title"] == "换掉自己的"
    assert client.delete(f"/needs/{TAKEN}", headers=e1).status_code == 204
    taken, missing = both("GET", "/needs/{id}")
    assert taken.status_code == 404
    _alike(taken, missing)
    assert client.get(f"/needs/{TAKEN}", headers=broker).json() == e2_before

    # results: the id may be left out too; a client that sends one keeps it
    made = client.post("/results", headers=broker, json={"title": "一种无编号的成果", "field": "新能源"})
    assert made.status_code == 201 and made.json()["id"].startswith("RW")
    assert client.get(f"/results/{made.json()['id']}", headers=broker).json()["title"] == "一种无编号的成果"
    bulk = client.post("/results/bulk", headers=broker, json=[{"title": "甲"}, {"id": "R-KEEP", "title": "乙"}])
    assert bulk.status_code == 201 and bulk.json()["ids"][1] == "R-KEEP" and bulk.json()["ids"][0].startswith("RW")
    harness.index_agrees_with_db()


def test_pages_answer_another_enterprises_need_like_a_missing_one(harness: ServiceHarness, loaded):
    client, _ = loaded
    with harness.services.sessions() as session:
        create_user(session, "li-e1", "correct-horse-9", "enterprise", "E1")
    browser = _signed_in(client.app, "li-e1")
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/web/needs/new").text).group(1)
    for method, path, form in [
        ("GET", "/web/needs/{id}", None), ("GET", "/web/needs/{id}/edit", None),
        ("POST", "/web/needs/{id}/edit", {"title": "改掉别人的需求", "description": "x"}),
        ("POST", "/web/needs/{id}/interest", {"result_id": "R1", "interested": "1"}),
        ("POST", "/web/needs/{id}/judge", {"result_id": "R1", "judgement": "relevant"}),
    ]:
        data = None if form is None else {**form, "csrf_token": token}
        taken = browser.request(method, path.format(id=TAKEN), data=data)
        missing = browser.request(method, path.format(id=MISSING), data=data)
        assert taken.status_code == 404 and "没有编号为" in taken.text, (method, path, taken.status_code)
        _alike(taken, missing)
