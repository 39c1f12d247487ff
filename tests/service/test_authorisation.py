"""The README's "Authentication and roles" table, enforced: every API operation (read from the app's own
OpenAPI schema, so a new route without a row here fails) x {no key, wrong key, enterprise A, enterprise B,
broker}, and every workbench page x {anonymous, enterprise A, enterprise B, broker}.

A = enterprise E1 (owns need N1), B = enterprise E2 (owns N2). Rows of the README's table, as access kinds:
"public" (health), "any" (a valid key: POST /match, reading results, needs scoped to the caller),
"own need" (A's need: B gets 404 as if it did not exist), "own enterprise", "broker" (enterprises 403).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ServiceHarness, fixture_rows, fresh_pg_database
from fastapi.testclient import TestClient

from service.core.partners import upsert_enterprises, upsert_funds

CALLERS = ("none", "wrong", "A", "B", "broker")
ENTERPRISE = {"A": "E1", "B": "E2"}
CONTACT = {"E1": "0519-000-secret", "E2": "027-000-secret"}


@dataclass
class World:
    client: TestClient
    keys: dict[str, dict[str, str]]

    def as_broker(self, method: str, url: str, **kw: Any) -> None:
        response = self.client.request(method, url, headers=self.keys["broker"], **kw)
        assert response.status_code < 300, response.text


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[World]:
    """The matrix's world on SQLite + FAISS, and on PostgreSQL + pgvector."""
    folder = tmp_path_factory.mktemp("authz")
    if request.param == "postgres":
        harness = ServiceHarness(fresh_pg_database(), folder / "home", "pgvector")
    else:
        harness = ServiceHarness(f"sqlite:///{folder / 'techmatch.db'}", folder / "home")
    with harness.running() as client:
        keys = {"none": {}, "wrong": {"X-API-Key": "tm_0000_not-a-real-key"}, "broker": harness.key("broker"),
                "A": harness.key("enterprise", "E1"), "B": harness.key("enterprise", "E2")}
        with harness.services.sessions() as session:
            upsert_enterprises(session, [
                {"id": "E1", "name": "一号电池有限公司", "contact": {"phone": CONTACT["E1"]}},
                {"id": "E2", "name": "二号汽车零部件公司", "contact": {"phone": CONTACT["E2"]}}])
            upsert_funds(session, [{"id": "F1", "name": "种子基金", "sectors": ["新能源"], "stages": ["seed"]}])
        w = World(client, keys)
        w.as_broker("POST", "/results/bulk", json=fixture_rows("result"))
        w.as_broker("POST", "/needs/bulk", json=fixture_rows("need"))
        yield w


NEED = {"title": "高镍三元正极材料循环寿命提升", "description": "循环1000次容量保持率大于90%"}
RESULT = {"title": "一种固态电解质薄膜的制备方法", "abstract": "溅射沉积制备固态电解质薄膜", "field": "新能源"}
Request = Callable[[World, str], tuple[str, str, dict[str, Any]]]


def _fresh(kind: str, enterprise: str | None = None) -> Request:
    """A DELETE of a record made just for this call (so every caller deletes something that exists)."""
    def build(w: World, caller: str) -> tuple[str, str, dict[str, Any]]:
        rid = f"DEL-{kind}-{caller}"
        body = {**(NEED if kind == "needs" else RESULT), "id": rid}
        if enterprise:
            body["enterprise"] = enterprise
        w.as_broker("POST", f"/{kind}/bulk", params={"replace": "true"}, json=[body])
        return "DELETE", f"/{kind}/{rid}", {}
    return build


def _upload(kind: str) -> Request:
    def build(w: World, caller: str) -> tuple[str, str, dict[str, Any]]:
        line = json.dumps({**(NEED if kind == "needs" else RESULT), "id": f"UP-{kind}-{caller}"}, ensure_ascii=False)
        upload = ("x.jsonl", io.BytesIO(line.encode()), "application/json")
        return "POST", f"/{kind}/upload", {"files": {"file": upload}}
    return build


def plain(method: str, url: str, **kw: Any) -> Request:
    return lambda w, caller: (method, url.format(caller=caller), {k: _fill(v, caller) for k, v in kw.items()})


def _fill(value: Any, caller: str) -> Any:
    return json.loads(json.dumps(value).replace("{caller}", caller))


R8 = next(r for r in fixture_rows("result") if r["id"] == "R8")
N1 = next(n for n in fixture_rows("need") if n["id"] == "N1")

# operation id -> (access kind, request). Enterprise calls on their own need and without an enterprise
# field get theirs; the broker writes as E1 where a need needs an owner.
OPERATIONS: dict[str, tuple[str, Request]] = {
    "health": ("public", plain("GET", "/health")),
    "ready": ("public", plain("GET", "/ready")),
    "match_text": ("any", plain("POST", "/match", json={"text": "高镍三元正极材料包覆改性", "k": 3})),
    "list_needs": ("any", plain("GET", "/needs")),
    "create_need": ("any", plain("POST", "/needs", json={**NEED, "id": "NEW-{caller}"})),
    "create_needs": ("any", plain("POST", "/needs/bulk", json=[{**NEED, "id": "BULK-{caller}"}])),
    "upload_needs": ("broker", _upload("needs")),
    "read_need": ("own need", plain("GET", "/needs/N1")),
    "update_need": ("own need", plain("PUT", "/needs/N1", json={k: v for k, v in N1.items() if k != "id"})),
    "delete_need": ("own need", _fresh("needs", "E1")),
    "need_matches": ("own need", plain("GET", "/needs/N1/matches", params={"k": 3})),
    "judge_match": ("own need", plain("POST", "/needs/N1/judgements", json={"result_id": "R2",
                                                                          "judgement": "irrelevant", "k": 3})),
    "list_results": ("any", plain("GET", "/results")),
    "create_result": ("broker", plain("POST", "/results", json={**RESULT, "id": "NEW-{caller}"})),
    "create_results": ("broker", plain("POST", "/results/bulk", json=[{**RESULT, "id": "BULK-{caller}"}])),
    "upload_results": ("broker", _upload("results")),
    "read_result": ("any", plain("GET", "/results/R1")),
    "update_result": ("broker", plain("PUT", "/results/R8", json={k: v for k, v in R8.items() if k != "id"})),
    "delete_result": ("broker", _fresh("results")),
    "result_needs": ("broker", plain("GET", "/results/R1/needs", params={"k": 3})),
    "push_result": ("broker", plain("GET", "/results/R1/push")),
    "get_shortlist": ("broker", plain("GET", "/shortlist", params={"top": 2})),
    "add_feedback": ("broker", plain("POST", "/feedback", json={"need_id": "N1", "result_id": "R1",
                                                                 "outcome": "contacted"})),
    "list_feedback": ("broker", plain("GET", "/feedback")),
    "list_enterprises": ("broker", plain("GET", "/enterprises")),
    "read_enterprise": ("own enterprise", plain("GET", "/enterprises/E1")),
    "list_funds": ("broker", plain("GET", "/funds")),
    "read_fund": ("broker", plain("GET", "/funds/F1")),
}


def expected(access: str, caller: str) -> int | str:
    """The status the README's table gives this caller ("2xx" for any success)."""
    if access == "public":
        return "2xx"
    if caller in ("none", "wrong"):
        return 401
    if caller == "broker" or access == "any":
        return "2xx"
    if access == "broker":
        return 403
    return "2xx" if caller == "A" else 404  # own need / own enterprise: B does not see A's


def test_every_operation_has_a_row(world: World):
    schema = world.client.get("/openapi.json").json()
    operations = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    assert operations == set(OPERATIONS), "every API operation needs a row in OPERATIONS"


CELLS = [(op, caller) for op in OPERATIONS for caller in CALLERS]


@pytest.mark.parametrize(("operation", "caller"), CELLS, ids=[f"{o}-{c}" for o, c in CELLS])
def test_authorisation_matrix(world: World, operation: str, caller: str):
    access, build = OPERATIONS[operation]
    method, url, kw = build(world, caller)
    response = world.client.request(method, url, headers=world.keys[caller], **kw)
    want = expected(access, caller)
    if want == "2xx":
        assert 200 <= response.status_code < 300, (method, url, caller, response.status_code, response.text)
    else:
        assert response.status_code == want, (method, url, caller, response.status_code, response.text)
        assert response.json()["detail"], response.text
    if caller in ENTERPRISE and response.status_code < 300:
        body = response.text
        other = ENTERPRISE["B" if caller == "A" else "A"]
        assert CONTACT[other] not in body  # never the other enterprise's contacts
        if operation != "read_enterprise":  # its own record carries its own contacts; nothing else does
            assert CONTACT[ENTERPRISE[caller]] not in body
        assert f'"enterprise":"{other}"' not in body.replace(" ", ""), body  # nothing of the other enterprise


def test_an_enterprise_lists_creates_and_replaces_only_its_own(world: World):
    c, keys = world.client, world.keys
    for caller, mine in ENTERPRISE.items():
        listed = c.get("/needs", headers=keys[caller], params={"limit": 500}).json()["items"]
        assert listed and {n["enterprise"] for n in listed} == {mine}
        other = "E2" if mine == "E1" else "E1"
        filtered = c.get("/needs", headers=keys[caller], params={"enterprise": other}).json()["items"]
        assert {n["enterprise"] for n in filtered} <= {mine}  # the filter cannot widen the scope
        made = c.post("/needs", headers=keys[caller], json={**NEED, "id": f"OWN-{caller}"}).json()
        assert made["enterprise"] == mine  # a new need gets the key's enterprise
        assert c.post("/needs", headers=keys[caller], json={**NEED, "id": f"X-{caller}", "enterprise": other}
                      ).status_code == 403
    # B cannot take over A's need through a bulk replace, an update or a delete; N1 is unchanged after
    before = c.get("/needs/N1", headers=keys["broker"]).json()
    assert c.post("/needs/bulk", headers=keys["B"], params={"replace": "true"},
                  json=[{**NEED, "id": "N1"}]).status_code == 403
    assert c.put("/needs/N1", headers=keys["B"], json=NEED).status_code == 404
    assert c.delete("/needs/N1", headers=keys["B"]).status_code == 404
    assert c.get("/needs/N1", headers=keys["broker"]).json() == before
    assert c.get("/enterprises/E1", headers=keys["broker"]).json()["contact"]  # brokers see contacts


# -- the workbench ------------------------------------------------------------------------------------------
PAGE_CALLERS = ("anonymous", "A", "B", "broker")


def web_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the workbench's routers."""
    from service.web.routes import account, dashboard, feedback, needs, results, shortlist, upload

    found = []
    for module in (account, dashboard, needs, results, shortlist, feedback, upload):
        for router in (module.router, getattr(module, "root", None)):
            for route in getattr(router, "routes", []):
                found += [(m, route.path) for m in sorted(route.methods)]
    return found


# (method, path) -> (access, concrete path, form data). "open": the sign-in pages; "user": any signed-in user,
# scoped to their own needs where a need is named (A's N1); "broker": enterprise users get 403.
PAGES: dict[tuple[str, str], tuple[str, str, dict[str, str] | None]] = {
    ("GET", "/"): ("open", "/", None),
    ("GET", "/web"): ("open", "/web", None),
    ("GET", "/web/"): ("user", "/web/", None),
    ("GET", "/web/login"): ("open", "/web/login", None),
    ("POST", "/web/login"): ("open", "/web/login", {"username": "nobody", "password": "wrong-password"}),
    ("POST", "/web/logout"): ("user", "/web/logout", {}),
    ("GET", "/web/dashboard"): ("broker", "/web/dashboard", None),
    ("GET", "/web/needs"): ("user", "/web/needs", None),
    ("GET", "/web/needs/new"): ("user", "/web/needs/new", None),
    ("POST", "/web/needs"): ("user", "/web/needs", {"title": "", "description": ""}),
    ("GET", "/web/needs/{need_id}"): ("own need", "/web/needs/N1", None),
    ("GET", "/web/needs/{need_id}/edit"): ("own need", "/web/needs/N1/edit", None),
    ("POST", "/web/needs/{need_id}/edit"): ("own need", "/web/needs/N1/edit", {"title": "", "description": ""}),
    ("POST", "/web/needs/{need_id}/interest"): ("own need", "/web/needs/N1/interest",
                                                {"result_id": "R1", "interested": "1"}),
    ("POST", "/web/needs/{need_id}/judge"): ("own need", "/web/needs/N1/judge",
                                             {"result_id": "R2", "judgement": "irrelevant"}),
    ("GET", "/web/results"): ("broker", "/web/results", None),
    ("GET", "/web/results/{result_id}"): ("broker", "/web/results/R1", None),
    ("GET", "/web/shortlist"): ("broker", "/web/shortlist", None),
    ("POST", "/web/shortlist"): ("broker", "/web/shortlist", {"top": "0"}),
    ("GET", "/web/jobs/{job_id}"): ("broker", "/web/jobs/nope", None),
    ("GET", "/web/shortlist.{suffix}"): ("broker", "/web/shortlist.csv", None),
    ("POST", "/web/feedback"): ("broker", "/web/feedback", {"need_id": "N1", "result_id": "R1", "outcome": "x"}),
    ("GET", "/web/feedback"): ("broker", "/web/feedback", None),
    ("GET", "/web/feedback.{suffix}"): ("broker", "/web/feedback.csv", None),
    ("GET", "/web/upload"): ("broker", "/web/upload", None),
    ("POST", "/web/upload"): ("broker", "/web/upload", {"kind": "results"}),
}


def test_every_page_has_a_row():
    assert set(web_routes()) == set(PAGES), "every workbench route needs a row in PAGES"


@pytest.fixture(scope="module")
def users(world: World) -> dict[str, TestClient]:
    """A signed-in browser-like client per user (own cookies), and an anonymous one."""
    from service.core.accounts import create_user

    services = world.client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        create_user(session, "wb-broker", "correct-horse-9", "broker")
        create_user(session, "wb-a", "correct-horse-9", "enterprise", "E1")
        create_user(session, "wb-b", "correct-horse-9", "enterprise", "E2")
    return {caller: sign_in(world, caller) for caller in PAGE_CALLERS}


USERNAMES = {"A": "wb-a", "B": "wb-b", "broker": "wb-broker"}


def sign_in(world: World, caller: str) -> TestClient:
    """A new browser-like client (its own cookies), signed in as the caller's user unless anonymous."""
    client = TestClient(world.client.app, raise_server_exceptions=False, follow_redirects=False)
    if caller in USERNAMES:
        token = _csrf(client.get("/web/login").text)
        assert client.post("/web/login", data={"username": USERNAMES[caller], "password": "correct-horse-9",
                                               "csrf_token": token}).status_code == 303
    return client


def _csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return found.group(1) if found else ""


PAGE_CELLS = [(route, caller) for route in PAGES for caller in PAGE_CALLERS]


@pytest.mark.parametrize(("route", "caller"), PAGE_CELLS, ids=[f"{m} {p}-{c}" for (m, p), c in PAGE_CELLS])
def test_pages_matrix(world: World, users: dict[str, TestClient], route: tuple[str, str], caller: str):
    access, path, form = PAGES[route]
    # signing in or out changes the session: those rows get a client of their own
    client = sign_in(world, caller) if path in ("/web/login", "/web/logout") else users[caller]
    if form is None:
        response = client.get(path)
    else:  # with the token of a page the user can open, as a browser would send it
        token = _csrf(client.get("/web/login" if caller == "anonymous" else "/web/needs/new").text)
        assert token, (route, caller)
        response = client.post(path, data={**form, "csrf_token": token})
    status = response.status_code
    if access == "open":  # the sign-in pages: a page or a redirect (a wrong password: its 401 page)
        assert status < 500 and status != 404, (route, caller, status)
        return
    if caller == "anonymous":  # sent to sign in (GET) or refused (POST); never the page itself
        assert status in (303, 307, 403) and (status == 403 or "/web/login" in response.headers["location"]
                                               or response.headers["location"] == "/web/"), (route, status)
        return
    if access == "broker" and caller != "broker":
        assert status == 403, (route, caller, status, response.text[:200])
        return
    if access == "own need" and caller == "B":
        assert status == 404, (route, caller, status)
        return
    assert status < 500 and status not in (401, 403, 404) or (route[1] == "/web/jobs/{job_id}" and status == 404), (
        route, caller, status, response.text[:300])
    if caller in ENTERPRISE and status == 200:
        assert "secret" not in response.text  # no enterprise's contacts on any page an enterprise user sees
