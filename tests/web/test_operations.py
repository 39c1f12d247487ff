"""The operations layers on one workbench: security headers on every response (pages for each role, the API,
errors, static files, the docs), HSTS and Secure cookies over https (directly, behind a trusted proxy, or by
setting), never from an untrusted proxy's word; the browser fixture's Content-Security-Policy watch catches
a violation; /metrics (route templates, not raw paths; the state read at scrape time; refused sign-ins);
request ids (the caller's echoed, a bad one replaced) and JSON access lines carrying them."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from conftest import Workbench, csrf_of
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.core.config import ServiceSettings
from service.main import create_app
from service.ops.headers import CSP
from service.ops.logs import log_config

BASE_HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
                "referrer-policy": "strict-origin-when-cross-origin"}
IDS = {"need_id": "N1", "result_id": "R1", "enterprise_id": "E1", "fund_id": "F1", "campaign_id": "1"}
BROKER_PAGES = ["/web/dashboard", "/web/needs", "/web/needs/N1", "/web/needs/N1/edit", "/web/needs/new", "/web/results",
                "/web/results/R1", "/web/shortlist", "/web/feedback", "/web/upload", "/web/feedback.csv",
                "/web/campaigns", "/web/audit", "/web/admin/users", "/web/account/password"]


def check(response, where: str) -> None:
    for name, value in BASE_HEADERS.items():
        assert response.headers.get(name) == value, f"{where}: {name} is {response.headers.get(name)!r}"
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, f"{where}: no frame-ancestors in {policy!r}"
    script = next(d for d in policy.split("; ") if d.startswith("script-src"))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, f"{where}: {script}"
    assert response.headers.get("x-request-id"), f"{where}: no X-Request-ID"


def api_paths(client: TestClient) -> list[str]:
    paths = [p for p, ops in client.get("/openapi.json").json()["paths"].items() if "get" in ops]
    return [path.format(**IDS) for path in paths]


def test_every_page_and_answer_carries_the_security_headers(workbench: Workbench):
    anonymous = workbench.client()
    broker = workbench.client("broker")
    enterprise = workbench.client("ent1")
    seen: list[tuple[str, int]] = []

    def visit(client: TestClient, path: str, who: str, **kw) -> None:
        response = client.get(path, **kw)
        check(response, f"{who} GET {path} ({response.status_code})")
        seen.append((path, response.status_code))

    for path in ["/", "/web/login", "/web/static/style.css", "/web/static/app.js", "/openapi.json",
                 "/web/nowhere", "/nowhere", "/web/needs"]:  # the last: a redirect to sign in
        visit(anonymous, path, "visitor")
    for path in BROKER_PAGES:
        visit(broker, path, "broker")
    for path in ["/web/needs", "/web/needs/N1", "/web/needs/N3", "/web/dashboard", "/web/results/R1"]:
        visit(enterprise, path, "enterprise")  # N3: another's need (404); the broker pages: 403
    for path in api_paths(anonymous):
        visit(anonymous, path, "API without key")
        visit(anonymous, path, "API broker", headers=workbench.broker_key)
    response = anonymous.post("/needs", content=b"x" * 64, headers={**workbench.broker_key,
                                                                    "content-length": str(10 ** 9)})
    check(response, "413 from the body limit")
    statuses = {status for _, status in seen}
    assert {200, 303, 401, 403, 404} <= statuses, statuses
    page = broker.get("/web/needs/N1")
    assert page.headers["content-security-policy"] == CSP
    assert "<script>" not in page.text and " style=" not in page.text and " onclick=" not in page.text


def test_docs_pages_allow_their_own_inline_script_by_hash_only(workbench: Workbench):
    client = workbench.client()
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc"):
        response = client.get(path)
        assert response.status_code == 200
        check(response, path)
        if "<script>" in response.text:
            assert "'sha256-" in response.headers["content-security-policy"]


def test_hsts_and_secure_cookies_only_over_https(workbench: Workbench):
    plain = workbench.client().get("/web/login")
    assert "strict-transport-security" not in plain.headers
    assert "secure" not in plain.headers["set-cookie"].lower()
    https = workbench.client(https=True).get("/web/login")
    assert https.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "secure" in https.headers["set-cookie"].lower()


@pytest.mark.parametrize("trusted", ["testclient", "10.0.0.1"])
def test_a_trusted_proxy_says_https_and_an_untrusted_one_is_ignored(tmp_path: Path, trusted: str):
    settings = ServiceSettings(home=tmp_path, trusted_proxies=trusted)
    with TestClient(create_app(settings)) as client:  # TestClient's peer address is "testclient"
        response = client.get("/web/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        believed = trusted == "testclient"
        assert ("strict-transport-security" in response.headers) == believed
        assert ("secure" in response.headers["set-cookie"].lower()) == believed


def test_https_only_marks_everything_secure_without_a_proxy(tmp_path: Path):
    with TestClient(create_app(ServiceSettings(home=tmp_path, https_only=True, hsts_seconds=600))) as client:
        response = client.get("/web/login")
        assert response.headers["strict-transport-security"] == "max-age=600; includeSubDomains"
        assert "secure" in response.headers["set-cookie"].lower()
        check(client.get("/health"), "/health")


@pytest.mark.browser
def test_the_browser_watch_catches_a_policy_violation(site, page, browser):
    """What makes every browser test check the policy: an inline script on a real page is blocked and
    recorded (then cleared here, so this test passes only because the watch saw it)."""
    page.goto(f"{site.base}/web/login")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(300)
    assert page.evaluate("window.ran === undefined")  # blocked by the policy
    assert any("script-src" in v for v in browser.violations), browser.violations
    browser.violations.clear()


def scrape(workbench: Workbench) -> dict[tuple[str, tuple], float]:
    text = workbench.client().get("/metrics", headers=workbench.broker_key).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_by_route_template_and_read_the_state(workbench: Workbench):
    client = workbench.client()
    before = scrape(workbench)
    for need in ("N1", "N2", "nope"):
        client.get(f"/needs/{need}", headers=workbench.broker_key)
    client.get("/some/scanner/path")
    token = csrf_of(client.get("/web/login").text)
    client.post("/web/login", data={"username": "broker", "password": "wrong-password", "csrf_token": token})
    after = scrape(workbench)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    requests = "techmatch_http_requests_total"
    assert delta(requests, method="GET", route="/needs/{need_id}", status="200") == 2
    assert delta(requests, method="GET", route="/needs/{need_id}", status="404") == 1
    assert delta(requests, method="GET", route="(unmatched)", status="404") == 1
    assert not any("N1" in dict(labels).get("route", "") or "scanner" in dict(labels).get("route", "")
                   for _, labels in after)  # raw paths never become series
    assert delta("techmatch_http_request_duration_seconds_count", method="GET", route="/needs/{need_id}") == 3
    assert delta("techmatch_signin_failures_total", outcome="failed") == 1
    assert after[("techmatch_index_records", (("side", "results"),))] == workbench.services.sync.counts()["results"]
    assert ("techmatch_jobs", (("state", "queued"),)) in after


def test_request_ids_are_echoed_or_made_and_json_access_lines_carry_them(tmp_path: Path):
    config = log_config(True)
    formatter = config["formatters"]["main"]
    from pythonjsonlogger.json import JsonFormatter

    from service.ops.logs import RequestIdFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt=formatter["fmt"], rename_fields=formatter["rename_fields"]))
    handler.addFilter(RequestIdFilter())
    access = logging.getLogger("techmatch.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with TestClient(create_app(ServiceSettings(home=tmp_path, log_json=True))) as client:
            given = client.get("/health", headers={"X-Request-ID": "req-42.a:b"})
            bad = client.get("/health", headers={"X-Request-ID": "no spaces or <tags> " * 3})
            made = client.get("/nowhere")
    finally:
        access.removeHandler(handler)
    assert given.headers["x-request-id"] == "req-42.a:b"
    assert bad.headers["x-request-id"] != "no spaces or <tags> " * 3 and len(bad.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [given.headers["x-request-id"], bad.headers["x-request-id"],
                                                      made.headers["x-request-id"]]
    assert lines[0]["route"] == "/health" and lines[0]["status"] == 200 and lines[0]["level"] == "INFO"
    assert lines[2]["status"] == 404 and lines[2]["route"] == "(unmatched)" and lines[2]["duration_ms"] >= 0
