"""The OpenAPI schema tells a client exactly what comes back: every operation is called on real data and
each answer (successes and errors alike) is validated against the schema the app publishes for that
operation and status. A new route must be added here, or the coverage check fails."""

from __future__ import annotations

import io
from typing import Any

import pytest
from conftest import ServiceHarness, fixture_rows
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.core.partners import upsert_enterprises, upsert_funds

ENTERPRISES = [{"id": "E1", "name": "秦川机床", "contact": "张工 029-1234"}]
FUNDS = [{"id": "F1", "name": "西部种子基金", "sectors": ["人工智能", "新能源"], "stages": ["seed"],
          "trl_min": 3, "trl_max": 7}]


class Contract:
    """Validates responses against the app's own /openapi.json."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry = Registry().with_resource("urn:openapi", Resource(spec, specification=DRAFT202012))
        self.seen: set[str] = set()

    def check(self, response, method: str, template: str) -> None:
        operation = self.spec["paths"][template][method]
        self.seen.add(operation["operationId"])
        documented = operation["responses"]
        status = str(response.status_code)
        assert status in documented, f"{method.upper()} {template} answered {status}, not in {sorted(documented)}"
        if response.status_code == 204:
            return
        content = documented[status]["content"]
        if "application/json" not in content:  # e.g. /metrics: Prometheus's text format
            assert response.headers["content-type"] in content, f"{method.upper()} {template}: {response.headers}"
            return
        schema = content["application/json"]["schema"]
        validator = Draft202012Validator(_rooted(schema), registry=self.registry)
        errors = sorted(validator.iter_errors(response.json()), key=lambda e: e.path)
        assert not errors, f"{method.upper()} {template} {status}: {errors[0].message} at {list(errors[0].path)}"


def _rooted(schema: Any) -> Any:
    """Point the spec's local references ('#/components/...') at the registered spec document."""
    if isinstance(schema, dict):
        return {k: (f"urn:openapi{v}" if k == "$ref" and v.startswith("#") else _rooted(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rooted(v) for v in schema]
    return schema


@pytest.fixture
def contract_client(harness: ServiceHarness):
    with harness.running() as client:
        broker = harness.key()
        enterprise, other = harness.key("enterprise", "E1"), harness.key("enterprise", "E2")
        with harness.services.sessions() as session:
            upsert_enterprises(session, ENTERPRISES)
            upsert_funds(session, FUNDS)
        yield client, broker, enterprise, other, Contract(client.get("/openapi.json").json())


def test_every_operation_answers_what_its_schema_says(contract_client):
    client, broker, enterprise, other, contract = contract_client

    def call(method: str, template: str, path: str | None = None, headers=broker, **kwargs):
        response = client.request(method, path or template, headers=headers, **kwargs)
        contract.check(response, method, template)
        return response

    results, needs = fixture_rows("result"), fixture_rows("need")
    assert call("post", "/results/bulk", json=results[:6]).status_code == 201
    assert call("post", "/results", json=results[6]).status_code == 201
    jsonl = "\n".join(__import__("json").dumps(r, ensure_ascii=False) for r in results[7:]).encode()
    assert call("post", "/results/upload", files={"file": ("r.jsonl", io.BytesIO(jsonl))}).status_code == 201
    assert call("post", "/needs/bulk", json=needs[:2]).status_code == 201
    assert call("post", "/needs", json={**needs[2], "enterprise": "E1"}).status_code == 201
    needs_csv = "id,title,description\n" + "\n".join(f"{n['id']},{n['title']},{n.get('description', '')}"
                                                     for n in needs[3:])
    assert call("post", "/needs/upload", files={"file": ("n.csv", io.BytesIO(needs_csv.encode()))}).status_code == 201

    call("get", "/health", headers={})
    call("get", "/ready", headers={})
    assert call("post", "/match", json={"text": "冲压零件表面划痕裂纹的视觉自动检测", "k": 3}).json()["matches"]
    call("get", "/needs", params={"limit": 2})
    call("get", "/needs/{need_id}", "/needs/N1")
    call("put", "/needs/{need_id}", "/needs/N1", json={**needs[0], "title": needs[0]["title"] + "（更新）"})
    call("get", "/needs/{need_id}/matches", "/needs/N1/matches", params={"k": 3, "trl_min": 2})
    call("post", "/needs/{need_id}/judgements", "/needs/N1/judgements",
         json={"result_id": "R2", "judgement": "irrelevant", "k": 3})
    call("get", "/results", params={"field": "人工智能"})
    call("get", "/results/{result_id}", "/results/R1")
    call("put", "/results/{result_id}", "/results/R8", json={"title": "钙钛矿光伏组件湿热封装", "trl": 5})
    call("get", "/results/{result_id}/needs", "/results/R1/needs", params={"k": 2})
    call("get", "/results/{result_id}/push", "/results/R3/push", params={"k": 2})
    call("get", "/shortlist", params={"top": 3})
    call("post", "/feedback", json={"need_id": "N1", "result_id": "R1", "outcome": "contacted", "note": "已联系"})
    call("get", "/feedback")
    call("get", "/enterprises")
    call("get", "/enterprises/{enterprise_id}", "/enterprises/E1", headers=enterprise)
    call("get", "/funds")
    call("get", "/funds/{fund_id}", "/funds/F1")
    assert call("post", "/needs", json={"title": "不带编号的需求"}, headers=enterprise).json()["id"].startswith("NW")
    assert call("get", "/audit", params={"action": "record.", "since": "2026-01-01"}).json()["total"] >= 1
    call("get", "/audit", headers=enterprise)
    assert "techmatch_http_requests_total" in call("get", "/metrics").text
    campaign = call("post", "/campaigns", json={"name": "评审", "scope": "all"}).json()["id"]
    call("get", "/campaigns")
    call("post", "/campaigns/{campaign_id}/next", f"/campaigns/{campaign}/next", params={"k": 2})
    call("post", "/campaigns/{campaign_id}/decisions", f"/campaigns/{campaign}/decisions",
         json={"result_id": "R1", "decision": "transferable", "note": "可转化"})
    call("get", "/campaigns/{campaign_id}/decisions", f"/campaigns/{campaign}/decisions")
    call("get", "/campaigns/{campaign_id}", f"/campaigns/{campaign}")
    call("delete", "/needs/{need_id}", "/needs/N4")
    call("delete", "/results/{result_id}", "/results/R7")

    # Errors are answers too: each has the documented shape with a detail that says what is wrong.
    for response in (
        call("get", "/needs/{need_id}", "/needs/N404"),
        call("get", "/needs/{need_id}", "/needs/N1", headers=other),  # another enterprise's need
        call("get", "/shortlist", headers=enterprise),
        call("get", "/metrics", headers=enterprise),
        call("get", "/results", headers={"X-API-Key": "tm_wrong"}),
        call("post", "/match", json={"text": "  ", "k": 0}),
        call("post", "/needs", json={"id": "N1", "title": "重复"}),
        call("get", "/results", params={"trl_min": 7, "trl_max": 2}),
        call("post", "/campaigns", json={"name": "空", "scope": "institution", "value": "没有这个机构"}),
        call("get", "/campaigns/{campaign_id}", "/campaigns/404"),
    ):
        assert response.status_code >= 400 and response.json()["detail"], (response.request.url, response.text)

    operations = {op["operationId"] for path in contract.spec["paths"].values() for op in path.values()}
    assert contract.seen == operations, f"operations never checked: {sorted(operations - contract.seen)}"
