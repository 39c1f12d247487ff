"""Prometheus metrics (prometheus-client): requests by route template and status, their latency, and the
service's state read at scrape time (index size, job queue, refused sign-ins).

Request counters and histograms live in the process that served the request; with ``techmatch serve
--workers N`` they are kept in prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
``serve`` before the workers start), so a scrape answered by any worker sums every worker's. The state
figures come from the database and the answering worker's index when scraped, so they are the same
whichever worker answers and need no shared memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.models import AuditRow, JobRow

disable_created_metrics()  # no *_created series: they double the lines and no dashboard reads them
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "(unmatched)"  # any path no route serves: one label, so scanners cannot grow the series
REQUESTS = Counter("techmatch_http_requests", "HTTP requests answered, by method, route template and status",
                   ["method", "route", "status"])
LATENCY = Histogram("techmatch_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
                    ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
JOB_STATES = ("queued", "running")


def route_of(scope: Scope) -> str:
    """The route template that served the request (``/needs/{need_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestMetrics:
    """Counts every HTTP request and times it, errors included (an exception counts as a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route, method = route_of(scope), scope["method"]
            LATENCY.labels(method, route).observe(time.perf_counter() - start)
            REQUESTS.labels(method, route, str(status)).inc()


class StateCollector(Collector):
    """The service's state, read when scraped: records in the index, background jobs, refused sign-ins."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        counts = self.services.sync.counts()
        records = GaugeMetricFamily("techmatch_index_records", "Records in the live index, by side", labels=["side"])
        records.add_metric(["results"], counts["results"])
        records.add_metric(["needs"], counts["needs"])
        yield records
        with self.services.sessions() as session:
            jobs = dict(session.execute(select(JobRow.state, func.count()).where(JobRow.state.in_(JOB_STATES))
                                        .group_by(JobRow.state)).all())
            signin = dict(session.execute(select(AuditRow.action, func.count())
                                          .where(AuditRow.action.in_(("signin.failed", "signin.throttled")))
                                          .group_by(AuditRow.action)).all())
        queue = GaugeMetricFamily("techmatch_jobs", "Background jobs waiting or running (the job queue)",
                                  labels=["state"])
        for state in JOB_STATES:
            queue.add_metric([state], jobs.get(state, 0))
        yield queue
        failures = CounterMetricFamily("techmatch_signin_failures", "Refused sign-ins (from the audit trail), by "
                                       "outcome: a wrong name or password, or refused by the throttle",
                                       labels=["outcome"])
        failures.add_metric(["failed"], signin.get("signin.failed", 0))
        failures.add_metric(["throttled"], signin.get("signin.throttled", 0))
        yield failures


def exposition(services: Any) -> bytes:
    """The text a scrape gets: the request metrics (every worker's, in multiprocess mode) and the state."""
    if os.environ.get(MULTIPROC_ENV):
        requests = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests)
    else:
        requests = REGISTRY  # one process: its request metrics and the process's own (CPU, memory, files)
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(services))
    return generate_latest(requests) + generate_latest(state)


def prepare_multiprocess(folder: str) -> None:
    """Empty the multiprocess folder before the workers start (the counts of a previous run would add up)."""
    from pathlib import Path

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
