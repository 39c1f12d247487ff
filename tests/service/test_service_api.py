"""The HTTP API end to end through a real HTTP client, on SQLite and on PostgreSQL (see conftest).

Real components throughout: the default hybrid pipeline (e5-small, BM25, char TF-IDF), real FAISS, a real
database; the answers checked are the hand-written fixture's obviously right matches.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pandas as pd
from conftest import ServiceHarness, fixture_rows
from sqlalchemy import select

from service.core.config import MAX_K, MAX_TEXT_CHARS
from service.core.models import NeedRow

DEFECT_TEXT = "冲压零件表面划痕裂纹的视觉自动检测"


def test_health_ready_and_docs(harness: ServiceHarness):
    with harness.running() as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["index_in_sync"] is True
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/match", "/needs", "/results/{result_id}/needs", "/shortlist", "/feedback"} <= set(paths)


def test_matching_both_directions_with_explanations_and_filters(loaded):
    client, broker = loaded
    body = client.post("/match", json={"text": DEFECT_TEXT, "k": 3}, headers=broker).json()
    top = body["matches"][0]
    assert top["id"] == "R3" and len(body["matches"]) == 3
    assert {"dense", "bm25", "char"} == set(top["signals"]) and "划痕" in top["shared_terms"]
    assert top["record"]["field"] == "人工智能"
    # Filters on result fields: TRL range, field, IP status.
    filtered = client.post("/match", json={"text": DEFECT_TEXT, "k": 8, "filters": {"trl_max": 5}}, headers=broker)
    assert filtered.status_code == 200
    assert filtered.json()["matches"] and all(m["record"]["trl"] <= 5 for m in filtered.json()["matches"])
    pending = client.get("/needs/N1/matches", params={"k": 8, "ip_status": "pending"}, headers=broker).json()
    assert pending["matches"] and {m["record"]["ip_status"] for m in pending["matches"]} == {"pending"}
    # Stored needs to results, and results back to needs.
    expected = {"N1": "R1", "N2": "R3", "N3": "R5", "N4": "R2"}
    for need_id, result_id in expected.items():
        matches = client.get(f"/needs/{need_id}/matches", params={"k": 1}, headers=broker).json()["matches"]
        assert matches[0]["id"] == result_id
    assert client.get("/results/R5/needs", params={"k": 2}, headers=broker).json()["matches"][0]["id"] == "N3"
    # A paragraph without a title: its first sentence is the title (what the dense signal embeds).
    paragraph = f"{DEFECT_TEXT}。我公司冲压件产量大，人工目检漏检率高，希望替代人工。"
    body = client.post("/match", json={"text": paragraph, "k": 1}, headers=broker).json()
    assert body["query"]["title"] == DEFECT_TEXT and body["matches"][0]["id"] == "R3"
    unexplained = client.post("/match", json={"text": DEFECT_TEXT, "k": 1, "explain": False}, headers=broker).json()
    assert unexplained["matches"][0]["id"] == "R3" and unexplained["matches"][0]["shared_terms"] == []


def test_crud_pagination_and_index_agree_with_database(harness: ServiceHarness, loaded):
    client, broker = loaded
    harness.index_agrees_with_db()
    new = {"id": "R9", "title": "一种钙钛矿太阳能电池的封装方法", "abstract": "提高钙钛矿光伏组件的湿热稳定性。",
           "field": "新能源", "trl": 4, "ip_status": "pending", "institution": "材料学院"}
    created = client.post("/results", json=new, headers=broker)
    assert created.status_code == 201 and created.json()["institution"] == "材料学院"
    assert client.get("/results/R9", headers=broker).json()["title"] == new["title"]
    assert client.post("/match", json={"text": "钙钛矿光伏组件湿热老化", "k": 1}, headers=broker).json()[
        "matches"][0]["id"] == "R9"
    harness.index_agrees_with_db()
    updated = client.put("/results/R9", json={**new, "title": "柔性有机发光显示器件的薄膜封装", "abstract": ""},
                         headers=broker)
    assert updated.status_code == 200
    assert client.post("/match", json={"text": "柔性有机发光显示薄膜封装", "k": 1}, headers=broker).json()[
        "matches"][0]["id"] == "R9"
    harness.index_agrees_with_db()
    need = client.put("/needs/N2", json={"title": "冲压件表面裂纹视觉检测", "description": "", "enterprise": "E2"},
                      headers=broker)
    assert need.status_code == 200 and need.json()["title"] == "冲压件表面裂纹视觉检测"
    assert client.delete("/results/R9", headers=broker).status_code == 204
    assert client.get("/results/R9", headers=broker).status_code == 404
    assert client.delete("/needs/N4", headers=broker).status_code == 204
    harness.index_agrees_with_db()
    # Pagination and filters on lists.
    page = client.get("/results", params={"limit": 3, "offset": 0}, headers=broker).json()
    rest = client.get("/results", params={"limit": 3, "offset": 3}, headers=broker).json()
    assert page["total"] == 8 and len(page["items"]) == 3 and len(rest["items"]) == 3
    assert not {r["id"] for r in page["items"]} & {r["id"] for r in rest["items"]}
    granted = client.get("/results", params={"ip_status": "granted", "trl_min": 6}, headers=broker).json()
    assert granted["items"] and all(r["ip_status"] == "granted" and r["trl"] >= 6 for r in granted["items"])
    assert client.get("/needs", params={"enterprise": "E1"}, headers=broker).json()["total"] == 1


def test_bulk_uploads_all_or_nothing(harness: ServiceHarness):
    with harness.running() as client:
        broker = harness.key()
        jsonl = "\n".join(json.dumps(r, ensure_ascii=False) for r in fixture_rows("result")).encode("utf-8")
        up = client.post("/results/upload", files={"file": ("results.jsonl", jsonl)}, headers=broker)
        assert up.status_code == 201 and up.json()["written"] == 8
        frame = pd.DataFrame(fixture_rows("need"))
        xlsx = io.BytesIO()
        frame.to_excel(xlsx, index=False)
        up = client.post("/needs/upload", files={"file": ("needs.xlsx", xlsx.getvalue())}, headers=broker)
        assert up.status_code == 201 and up.json()["written"] == 4
        assert client.get("/needs/N3/matches", params={"k": 1}, headers=broker).json()["matches"][0]["id"] == "R5"
        # Existing ids: refused without ?replace, accepted with it; CSV goes through the same rules.
        csv_bytes = frame.to_csv(index=False).encode("utf-8")
        again = client.post("/needs/upload", files={"file": ("needs.csv", csv_bytes)}, headers=broker)
        assert again.status_code == 409 and "N1" in again.json()["detail"]
        replaced = client.post("/needs/upload", params={"replace": "true"}, files={"file": ("needs.csv", csv_bytes)},
                               headers=broker)
        assert replaced.status_code == 201
        # Duplicate ids or one bad row: the whole upload is refused and nothing is written.
        dup = [{"id": "N7", "title": "甲"}, {"id": "N8", "title": "乙"}, {"id": "N7", "title": "丙"}]
        resp = client.post("/needs/bulk", json=dup, headers=broker)
        assert resp.status_code == 422 and "duplicate" in resp.json()["detail"] and "N7" in resp.json()["detail"]
        bad = b'{"id": "N9", "title": "ok"}\n{"id": "N10", "title": ""}\n'
        resp = client.post("/needs/upload", files={"file": ("needs.jsonl", bad)}, headers=broker)
        assert resp.status_code == 422 and "line 2" in resp.json()["detail"] and "title" in resp.json()["detail"]
        dup_file = b'{"id": "N9", "title": "ok"}\n{"id": "N9", "title": "again"}\n'
        resp = client.post("/needs/upload", files={"file": ("needs.jsonl", dup_file)}, headers=broker)
        assert resp.status_code == 422 and "duplicate id 'N9'" in resp.json()["detail"]
        with harness.services.sessions() as session:
            assert set(session.scalars(select(NeedRow.id))) == {"N1", "N2", "N3", "N4"}
        harness.index_agrees_with_db()


def test_every_bad_input_gets_a_4xx_with_a_message(loaded):
    client, broker = loaded
    long_text = "电池" * (MAX_TEXT_CHARS // 2 + 1)
    cases = [
        ("post", "/match", {"json": {"text": "   "}}, 422, "empty"),
        ("post", "/match", {"json": {"text": ""}}, 422, "empty"),
        ("post", "/match", {"json": {"text": long_text}}, 422, str(MAX_TEXT_CHARS)),
        ("post", "/match", {"json": {"text": DEFECT_TEXT, "k": 0}}, 422, "'k'"),
        ("post", "/match", {"json": {"text": DEFECT_TEXT, "k": MAX_K + 1}}, 422, "'k'"),
        ("post", "/match", {"json": {"text": DEFECT_TEXT, "k": "ten"}}, 422, "'k'"),
        ("post", "/match", {"json": {"text": 42}}, 422, "'text'"),
        ("post", "/match", {"json": ["not", "an", "object"]}, 422, "body"),
        ("post", "/match", {"json": {"text": DEFECT_TEXT, "filters": {"trl_min": 8, "trl_max": 2}}}, 422, "trl_min"),
        ("post", "/match", {"content": b'{"text": "\xff\xfe\xfd"}', "headers": {"content-type": "application/json"}},
         (400, 422), "UTF-8"),
        ("post", "/match", {"content": b'{"text": ', "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ("get", "/needs/NOPE/matches", {}, 404, "NOPE"),
        ("get", "/needs/N1/matches", {"params": {"k": 1000}}, 422, "'k'"),
        ("get", "/needs/N1/matches", {"params": {"trl_min": 7, "trl_max": 3}}, 422, "trl_min"),
        ("get", "/results/NOPE", {}, 404, "unknown result id 'NOPE'"),
        ("get", "/results/NOPE/needs", {}, 404, "NOPE"),
        ("get", "/results", {"params": {"limit": 0}}, 422, "'limit'"),
        ("get", "/results", {"params": {"offset": -1}}, 422, "'offset'"),
        ("put", "/results/NOPE", {"json": {"title": "x"}}, 404, "NOPE"),
        ("delete", "/needs/NOPE", {}, 404, "NOPE"),
        ("post", "/results", {"json": {"id": "R1", "title": "重复"}}, 409, "already exist"),
        ("post", "/results", {"json": {"id": "R77", "title": "x", "trl": 12}}, 422, "trl"),
        ("post", "/results", {"json": {"id": "  ", "title": "blank id"}}, 422, "id"),
        ("post", "/needs", {"json": {"id": "N77", "title": "  "}}, 422, "title"),
        ("post", "/needs", {"json": {"id": "N77", "title": "x", "keywords": "not-a-list"}}, 422, "keywords"),
        ("post", "/results/bulk", {"json": []}, 422, "no records given"),
        ("post", "/results/upload", {"files": {"file": ("r.txt", b"hello")}}, 415, ".jsonl"),
        ("post", "/results/upload", {"files": {"file": ("r.jsonl", b"")}}, 422, "empty"),
        ("post", "/results/upload", {"files": {"file": ("r.csv", "id,title\nR50,标题\n".encode("gbk"))}}, 422, "UTF-8"),
        ("post", "/feedback", {"json": {"need_id": "N1", "result_id": "R1", "outcome": "maybe"}}, 422, "outcome"),
        ("post", "/feedback", {"json": {"need_id": "NOPE", "result_id": "R1", "outcome": "signed"}}, 404, "NOPE"),
        ("post", "/feedback", {"json": {"need_id": "N1", "result_id": "R1", "outcome": "signed", "note": "x" * 5000}},
         422, "note"),
    ]
    for method, path, kwargs, status, words in cases:
        headers = {**broker, **kwargs.pop("headers", {})}
        resp = getattr(client, method)(path, headers=headers, **kwargs)
        allowed = status if isinstance(status, tuple) else (status,)
        assert resp.status_code in allowed, (method, path, resp.status_code, resp.text)
        assert words in resp.json()["detail"], (method, path, resp.json())
        assert "Traceback" not in resp.text
    # No key, a wrong key.
    assert client.post("/match", json={"text": DEFECT_TEXT}).status_code == 401
    assert client.post("/match", json={"text": DEFECT_TEXT}, headers={"X-API-Key": "tm_nope"}).status_code == 401
    # Nothing above was half-written.
    assert client.get("/results", headers=broker).json()["total"] == 8


def test_keys_work_at_once_keep_their_role_and_unknown_keys_are_not_remembered(harness: ServiceHarness):
    """Known keys are cached for a minute (no database session per search); that must not change answers."""
    with harness.running() as client:
        for _ in range(2):
            assert client.get("/feedback", headers={"X-API-Key": "tm_0000_not-a-key"}).status_code == 401
        broker, enterprise = harness.key(), harness.key("enterprise", "E9")
        for _ in range(2):  # the second call is answered from the cache
            assert client.get("/feedback", headers=broker).status_code == 200
            assert client.get("/feedback", headers=enterprise).status_code == 403
        assert len(harness.services.callers) == 2  # the two real keys, not the unknown one


def test_oversized_upload_is_refused(harness: ServiceHarness):
    harness.settings.max_upload_bytes = 4096
    with harness.running() as client:
        broker = harness.key()
        big = b'{"id": "R1", "title": "' + "电池".encode() * 3000 + b'"}\n'
        resp = client.post("/results/upload", files={"file": ("r.jsonl", big)}, headers=broker)
        assert resp.status_code == 413 and "4096" in resp.json()["detail"]
        assert client.get("/results", headers=broker).json()["total"] == 0


def test_enterprise_keys_see_and_change_only_their_own(harness: ServiceHarness, loaded):
    client, broker = loaded
    from service.core.partners import upsert_enterprises

    with harness.services.sessions() as session:
        upsert_enterprises(session, [
            {"id": "E1", "name": "甲电池公司", "contact": {"phone": "010-1111"}},
            {"id": "E2", "name": "乙汽车公司", "contact": {"phone": "010-2222"}},
        ])
    e1 = harness.key("enterprise", "E1")
    mine = client.get("/needs", headers=e1).json()
    assert [n["id"] for n in mine["items"]] == ["N1", "N4"] and mine["total"] == 2
    assert client.get("/needs", params={"enterprise": "E2"}, headers=e1).json()["total"] == 2  # still only its own
    assert client.get("/needs/N1/matches", params={"k": 1}, headers=e1).json()["matches"][0]["id"] == "R1"
    for method, path, kwargs in [
        ("get", "/needs/N2", {}), ("get", "/needs/N2/matches", {}), ("delete", "/needs/N2", {}),
        ("put", "/needs/N2", {"json": {"title": "改掉别人的需求"}}),
    ]:
        resp = getattr(client, method)(path, headers=e1, **kwargs)
        assert resp.status_code in (403, 404), (method, path, resp.status_code)
    assert client.get("/needs/N2", headers=broker).json()["title"] == "汽车零部件外观缺陷自动检测"
    # Own contact details yes, another enterprise's no; broker-only views are closed.
    assert client.get("/enterprises/E1", headers=e1).json()["contact"]["phone"] == "010-1111"
    assert client.get("/enterprises/E2", headers=e1).status_code == 404
    for path in ("/enterprises", "/funds", "/feedback", "/shortlist", "/results/R3/push", "/results/R3/needs"):
        assert client.get(path, headers=e1).status_code == 403, path
    assert "010-2222" not in client.get("/needs/N1/matches", headers=e1).text
    # Creating: its own enterprise is filled in; speaking for another is refused; result writes are for brokers.
    created = client.post("/needs", json={"id": "N5", "title": "电池包热失控预警"}, headers=e1)
    assert created.status_code == 201 and created.json()["enterprise"] == "E1"
    assert client.post("/needs", json={"id": "N6", "title": "x", "enterprise": "E2"}, headers=e1).status_code == 403
    taken = client.post("/needs/bulk", params={"replace": "true"}, json=[{"id": "N2", "title": "抢占"}], headers=e1)
    assert taken.status_code == 201  # as for a missing id: E1 gets a need of its own it knows as N2 ...
    assert client.get("/needs/N2", headers=broker).json()["title"] == "汽车零部件外观缺陷自动检测"  # ... E2's stays
    assert client.post("/results", json={"id": "R50", "title": "x"}, headers=e1).status_code == 403
    assert client.delete("/results/R1", headers=e1).status_code == 403
    harness.index_agrees_with_db()


def test_push_shortlist_and_feedback(harness: ServiceHarness, loaded):
    client, broker = loaded
    from service.core.partners import upsert_enterprises, upsert_funds

    with harness.services.sessions() as session:
        upsert_enterprises(session, [{"id": "E3", "name": "丙牧业公司", "contact": {"phone": "0471-3333"}}])
        upsert_funds(session, [{"id": "F1", "name": "农业科技天使基金", "sectors": ["生物制造"],
                                "stages": ["seed", "angel"], "ticket_min": 100, "ticket_max": 500}])
    push = client.get("/results/R5/push", params={"k": 2}, headers=broker).json()
    enterprises = [t for t in push["targets"] if t["kind"] == "enterprise"]
    assert enterprises[0]["id"] == "E3" and enterprises[0]["name"] == "丙牧业公司"
    assert enterprises[0]["need_id"] == "N3" and "0471-3333" not in json.dumps(push, ensure_ascii=False)
    assert any(t["kind"] == "fund" and t["id"] == "F1" for t in push["targets"])
    short = client.get("/shortlist", params={"top": 5, "limit": 2}, headers=broker).json()
    assert short["total"] == 5 and len(short["items"]) == 2 and short["items"][0]["rank"] == 1
    assert {"result_id", "score", "top_need_ids", "push", "reasons"} <= set(short["items"][0])
    assert client.get("/funds", headers=broker).json()["items"][0]["id"] == "F1"
    assert client.get("/enterprises/E3", headers=broker).json()["contact"]["phone"] == "0471-3333"
    # Feedback is stored per pair with the broker's key id, newest first, filterable and paged.
    for outcome in ("contacted", "accepted", "signed"):
        resp = client.post("/feedback", json={"need_id": "N3", "result_id": "R5", "outcome": outcome,
                                              "note": f"已{outcome}"}, headers=broker)
        assert resp.status_code == 201 and resp.json()["key_id"]
    client.post("/feedback", json={"need_id": "N1", "result_id": "R2", "outcome": "rejected"}, headers=broker)
    listed = client.get("/feedback", params={"need_id": "N3", "limit": 2}, headers=broker).json()
    assert listed["total"] == 3 and [f["outcome"] for f in listed["items"]] == ["signed", "accepted"]
    rejected = client.get("/feedback", params={"outcome": "rejected"}, headers=broker).json()
    assert rejected["items"][0]["result_id"] == "R2"


def test_acknowledged_writes_survive_a_restart_and_a_lost_index(harness: ServiceHarness):
    with harness.running() as client:
        broker = harness.key()
        client.post("/results/bulk", json=fixture_rows("result"), headers=broker)
        client.post("/needs/bulk", json=fixture_rows("need"), headers=broker)
        client.put("/results/R8", json={"title": "钙钛矿光伏组件湿热封装", "trl": 5}, headers=broker)
        client.delete("/results/R7", headers=broker)
        client.post("/feedback", json={"need_id": "N1", "result_id": "R1", "outcome": "signed"}, headers=broker)
    with harness.running() as client:  # a restart on the same database and index folder
        assert client.get("/results", headers=broker).json()["total"] == 7
        assert client.get("/results/R7", headers=broker).status_code == 404
        assert client.post("/match", json={"text": "钙钛矿组件湿热封装", "k": 1}, headers=broker).json()[
            "matches"][0]["id"] == "R8"
        assert client.get("/feedback", headers=broker).json()["items"][0]["outcome"] == "signed"
        harness.index_agrees_with_db()
        # A crash after the database commit but before the index save: the database changed behind the index.
        from service.core.catalog import store_rows
        from service.core.sync import row_record

        with harness.services.sessions() as session:
            record = row_record(session.get(NeedRow, "N2"), "need")
            store_rows(session, "need", [type(record)("N2", "牛羊饲料无抗替代配方", "", (), record.extra)])
            session.delete(session.get(NeedRow, "N4"))
            session.commit()
    with harness.running() as client:
        harness.index_agrees_with_db()
        assert client.get("/results/R5/needs", params={"k": 4}, headers=broker).json()["matches"][0]["id"] in {
            "N2", "N3"}
        assert client.get("/ready").json()["needs"] == 3
    # A damaged index folder is rebuilt from the database at startup.
    for path in (harness.settings.resolved_index_dir / "results").glob("*.npz"):
        path.write_bytes(b"damaged")
    with harness.running() as client:
        harness.index_agrees_with_db()
        assert client.post("/match", json={"text": DEFECT_TEXT, "k": 1}, headers=broker).json()[
            "matches"][0]["id"] == "R3"


def test_a_failed_index_save_is_retried_and_never_fails_a_write(harness: ServiceHarness, loaded, monkeypatch):
    client, broker = loaded
    from recommender.hybrid import HybridIndex

    calls = {"n": 0}
    real_save = HybridIndex.save

    def save_failing_once(self, folder, extra=None):  # a disk error in the middle of an index save
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real_save(self, folder, extra)

    monkeypatch.setattr(HybridIndex, "save", save_failing_once)
    resp = client.post("/results", json={"id": "R20", "title": "钙钛矿光伏组件湿热封装"}, headers=broker)
    assert resp.status_code == 201 and calls["n"] == 0  # the folder is saved in the background, not by the write
    assert client.post("/match", json={"text": "钙钛矿组件湿热封装", "k": 1}, headers=broker).json()[
        "matches"][0]["id"] == "R20"
    sync = harness.services.sync
    sync.flush()  # the save fails (logged) and stays pending
    assert calls["n"] == 1 and sync.saver.pending > 0
    sync.flush()
    assert calls["n"] > 1 and sync.saver.pending == 0
    harness.index_agrees_with_db()
    assert client.get("/ready").status_code == 200


def test_the_folder_is_saved_in_the_background_and_on_shutdown(tmp_path: Path):
    harness = ServiceHarness(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home")
    harness.settings.save_interval = 3600.0  # only the shutdown saves
    records = harness.settings.resolved_index_dir / "results" / "records.jsonl"
    with harness.running() as client:
        broker = harness.key()
        assert client.post("/results/bulk", json=fixture_rows("result"), headers=broker).status_code == 201
        assert client.post("/match", json={"text": DEFECT_TEXT, "k": 1}, headers=broker).json()[
            "matches"][0]["id"] == "R3"
        assert not records.exists()  # acknowledged and searchable, not yet saved
    assert len(records.read_text(encoding="utf-8").splitlines()) == len(fixture_rows("result"))
    harness.settings.save_interval = 0.0  # every change saved at once, by the saver's thread
    with harness.running() as client:
        assert client.delete("/results/R1", headers=harness.key()).status_code in (200, 204)
        for _ in range(100):
            if harness.services.sync.saver is not None and harness.services.sync.saver.saves:
                break
            time.sleep(0.05)
        assert "R1" not in records.read_text(encoding="utf-8")


def test_duplicate_results_fold_into_one_match_and_uploads_report_them(loaded):
    client, broker = loaded
    r3 = next(r for r in fixture_rows("result") if r["id"] == "R3")
    twin = r3 | {"id": "R3b", "title": r3["title"] + "。"}  # the same work registered again
    up = client.post("/results/bulk", json=[twin], headers=broker)
    assert up.status_code == 201 and up.json()["duplicates_of_existing"] == {"R3b": ["R3"]}
    matches = client.post("/match", json={"text": DEFECT_TEXT, "k": 5}, headers=broker).json()["matches"]
    assert matches[0]["id"] == "R3" and matches[0]["duplicates"] == ["R3b"]
    assert "R3b" not in [m["id"] for m in matches]
    kept = client.post("/match", json={"text": DEFECT_TEXT, "k": 5, "collapse_duplicates": False},
                       headers=broker).json()["matches"]
    assert {m["id"] for m in kept[:2]} == {"R3", "R3b"} and all(m["duplicates"] == [] for m in kept)
    stored = client.get("/needs/N2/matches", params={"k": 5}, headers=broker).json()["matches"]
    assert stored[0]["id"] == "R3" and stored[0]["duplicates"] == ["R3b"]
    stored = client.get("/needs/N2/matches", params={"k": 5, "collapse_duplicates": "false"}, headers=broker).json()
    assert "R3b" in [m["id"] for m in stored["matches"]]
    # an update that changes the twin's title takes it out of the group (the index follows every write)
    changed = twin | {"title": "完全不同的一项成果：高温合金叶片"}
    assert client.put("/results/R3b", json=changed, headers=broker).status_code == 200
    matches = client.post("/match", json={"text": DEFECT_TEXT, "k": 5}, headers=broker).json()["matches"]
    assert matches[0]["id"] == "R3" and matches[0]["duplicates"] == []
