"""The audit trail (issue 23, item 4) after a scripted day of work through the API and the pages: an entry of
each kind of action, who/when/what/from where; filters and the CSV export; an enterprise reads only its own
account's entries (API and page). The admin pages (item 5) do the day's account work, so they are exercised
here too: users, enterprises and keys created, a key revoked, a password reset, a user disabled."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta

import pytest
from conftest import ServiceHarness, fixture_rows
from fastapi.testclient import TestClient

from service.core.accounts import create_user

PASSWORD = "correct-horse-9"
EXPECTED = {
    "signin.ok", "signin.failed", "signin.throttled", "key.created", "key.revoked", "user.created", "user.disabled",
    "user.password_changed", "enterprise.created", "record.created", "record.updated", "record.deleted", "upload",
    "export", "shortlist.run", "feedback", "interest", "judgement",
}


@pytest.fixture
def db_url(db_url: str, request: pytest.FixtureRequest) -> str:
    if request.node.callspec.params.get("db_url") == "milvus":
        pytest.skip("the audit trail does not depend on the ANN backend: covered by the sqlite case")
    return db_url


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _browser(app, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    answer = client.post("/web/login", data={"username": username, "password": password,
                                             "csrf_token": _csrf(client.get("/web/login").text)})
    assert answer.status_code == 303, answer.text[:300]
    return client


def _post(client: TestClient, path: str, **form: str):
    token = _csrf(client.get("/web/account/password").text)
    return client.post(path, data={**form, "csrf_token": token})


def test_a_day_of_work_leaves_an_entry_of_each_kind_and_each_enterprise_reads_its_own(harness: ServiceHarness):
    harness.settings = harness.settings.model_copy(update={"signin_max_per_account": 2})
    with harness.running() as api:
        app, broker = api.app, harness.key()
        with harness.services.sessions() as session:
            create_user(session, "admin-zhao", PASSWORD, "broker", display_name="赵管理员", is_admin=True)
            create_user(session, "broker-wang", PASSWORD, "broker", display_name="王经理")
        # sign-in: a wrong password twice (the second locks the account for the window), then refused, then ok
        anonymous = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        for _ in range(3):
            anonymous.post("/web/login", data={"username": "broker-wang", "password": "wrong-password",
                                               "csrf_token": _csrf(anonymous.get("/web/login").text)})
        admin = _browser(app, "admin-zhao")
        for path in ("/web/admin/users", "/web/admin/keys", "/web/account/password"):  # every form carries the token
            tokens = re.findall(r'name="csrf_token" value="([^"]*)"', admin.get(path).text)
            assert len(tokens) >= 2 and set(tokens) == {_csrf(admin.get("/web/needs/new").text)}, path
        # the admin opens an enterprise and its accounts on the admin pages
        made = _post(admin, "/web/admin/enterprises", name="一号电池有限公司", enterprise_id="E1", industry="新能源")
        assert made.status_code == 200 and "已创建企业 E1" in made.text
        assert _post(admin, "/web/admin/enterprises", name="").status_code == 422  # refused with a message
        made = _post(admin, "/web/admin/users", username="li-e1", display_name="李工", role="enterprise",
                     enterprise="E1")
        temporary = re.search(r'data-testid="secret">([^<]+)<', made.text).group(1)
        weak = _post(admin, "/web/admin/users", username="weak", role="broker", password="abcdefghijkl")
        assert weak.status_code == 422 and "不能只由一类字符" in weak.text
        assert _post(admin, "/web/admin/users", username="zhou-e2", role="enterprise", enterprise="E2",
                     password=PASSWORD).status_code == 200
        made = _post(admin, "/web/admin/keys", role="enterprise", enterprise="E1", label="ERP 对接")
        e1 = {"X-API-Key": re.search(r'data-testid="secret">([^<]+)<', made.text).group(1)}
        made = _post(admin, "/web/admin/keys", role="enterprise", enterprise="E2", label="二号")
        e2 = {"X-API-Key": re.search(r'data-testid="secret">([^<]+)<', made.text).group(1)}
        spare = _post(admin, "/web/admin/keys", role="broker", label="临时")
        spare_id = re.search(r'data-testid="secret">tm_([0-9a-f]+)_', spare.text).group(1)
        assert _post(admin, f"/web/admin/keys/{spare_id}/revoke").status_code == 303
        keys_page = admin.get("/web/admin/keys").text
        assert "ERP 对接" in keys_page and "已吊销" in keys_page
        # li signs in with the temporary password and changes it (a weak one first: refused)
        li = _browser(app, "li-e1", temporary)
        assert _post(li, "/web/account/password", current=temporary, new="1234567890",
                     confirm="1234567890").status_code == 422
        assert _post(li, "/web/account/password", current=temporary, new="li-gong-battery-7",
                     confirm="li-gong-battery-7").status_code == 303
        # records through the API: the broker's results (bulk, upload), the enterprise's needs
        assert api.post("/results/bulk", json=fixture_rows("result")[:6], headers=broker).status_code == 201
        line = json.dumps(fixture_rows("result")[6], ensure_ascii=False).encode()
        assert api.post("/results/upload", files={"file": ("r.jsonl", io.BytesIO(line))},
                        headers=broker).status_code == 201
        need = api.post("/needs", json={"title": "动力电池正极材料循环寿命提升", "description": "循环寿命"}, headers=e1)
        need_id = need.json()["id"]
        changed = api.put(f"/needs/{need_id}", json={"title": "正极材料循环寿命提升到2000次"}, headers=e1)
        assert changed.status_code == 200
        assert api.post("/needs/bulk", json=[{"title": "汽车零部件外观缺陷检测"}, {"title": "冲压件划痕"}],
                        headers=e2).status_code == 201
        gone = api.post("/needs", json={"title": "临时需求"}, headers=e1).json()["id"]
        assert api.delete(f"/needs/{gone}", headers=e1).status_code == 204
        assert api.post(f"/needs/{need_id}/judgements", json={"result_id": "R1", "judgement": "relevant"},
                        headers=e1).status_code == 200
        assert _post(li, f"/web/needs/{need_id}/interest", result_id="R2", interested="1").status_code == 303
        # the broker's work: a shortlist, an outcome, exports
        assert api.get("/shortlist", params={"top": 3}, headers=broker).status_code == 200
        assert api.post("/feedback", json={"need_id": need_id, "result_id": "R1", "outcome": "contacted"},
                        headers=broker).status_code == 201
        assert admin.get("/web/feedback.csv").status_code == 200
        # the admin resets a password and disables a user
        assert _post(admin, "/web/admin/users/zhou-e2/password").status_code == 200
        assert _post(admin, "/web/admin/users/zhou-e2/disable").status_code == 303

        # -- what the trail holds -------------------------------------------------------------------------------
        entries = api.get("/audit", params={"limit": 500}, headers=broker).json()["items"]
        assert {e["action"] for e in entries} >= EXPECTED, EXPECTED - {e["action"] for e in entries}
        assert all(e["actor"] and e["at"] and (e["address"] or e["actor"] == "cli") for e in entries)
        by = {(e["action"], e["actor"]) for e in entries}
        assert ("key.revoked", "user:admin-zhao") in by and ("signin.throttled", "broker-wang") in by
        created = [e for e in entries if e["action"] == "record.created"]
        assert any("result × 6" in e["detail"] for e in created)  # a bulk write: its count
        assert any(e["detail"].startswith("need × 2") and e["account"] == "E2" for e in created)
        assert any(e["action"] == "upload" and "1 written" in e["detail"] for e in entries)
        # filters: action prefix, actor, date range (today in, a range ending yesterday out)
        only = api.get("/audit", params={"action": "record.", "limit": 500}, headers=broker).json()["items"]
        assert only and {e["action"] for e in only} == {"record.created", "record.updated", "record.deleted"}
        mine = api.get("/audit", params={"actor": "user:admin-zhao", "limit": 500}, headers=broker).json()["items"]
        assert mine and {e["actor"] for e in mine} == {"user:admin-zhao"}
        today, yesterday = date.today().isoformat(), (date.today() - timedelta(days=1)).isoformat()
        assert api.get("/audit", params={"since": yesterday, "until": today}, headers=broker).json()["total"] == len(
            entries)
        assert api.get("/audit", params={"until": yesterday}, headers=broker).json()["total"] == 0
        assert api.get("/audit", params={"since": "not-a-date"}, headers=broker).status_code == 422

        # an enterprise reads its own account's entries only: by API key and on the page
        for key, own in ((e1, "E1"), (e2, "E2")):
            seen = api.get("/audit", params={"limit": 500}, headers=key).json()
            assert seen["total"] > 0 and {e["account"] for e in seen["items"]} == {own}
            assert api.get("/audit", params={"actor": "user:", "limit": 500},
                           headers=key).json()["total"] <= seen["total"]
        e1_actions = {e["action"] for e in api.get("/audit", params={"limit": 500}, headers=e1).json()["items"]}
        assert {"record.created", "record.deleted", "judgement", "interest", "feedback", "key.created",
                "user.password_changed", "signin.ok"} <= e1_actions
        page = li.get("/web/audit")
        assert page.status_code == 200 and "操作记录" in page.text and "li-e1" in page.text
        # E2 as a word: server-assigned need ids are random letters and digits and may hold "E2" (NW38A93E27)
        assert "zhou-e2" not in page.text and "broker-wang" not in page.text
        assert re.search(r"(?<![A-Za-z0-9])E2(?![A-Za-z0-9])", page.text) is None
        download = li.get("/web/audit.csv", params={"action": "record."})
        rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert rows and {r["account"] for r in rows} == {"E1"} and {r["action"][:7] for r in rows} == {"record."}
        # the broker's page: filtered, paged, and its CSV the same entries
        page = admin.get("/web/audit", params={"action": "key.revoked"})
        assert page.status_code == 200 and page.text.count('data-action="key.revoked"') == 1
        download = admin.get("/web/audit.csv", params={"who": "user:admin-zhao"})
        rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert rows and {r["actor"] for r in rows} == {"user:admin-zhao"}
        last = api.get("/audit", params={"limit": 1}, headers=broker).json()["items"][0]
        assert last["action"] == "export" and "audit.csv" in last["detail"]  # the download is audited too
