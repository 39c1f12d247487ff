"""/metrics (route templates, not raw paths; the state read at scrape time; refused sign-ins), request ids
(the caller's echoed, a bad one replaced) and JSON access lines carrying the request id."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from conftest import Workbench, csrf_of
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.core.config import ServiceSettings
from service.main import create_app
from service.ops.logs import log_config


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
