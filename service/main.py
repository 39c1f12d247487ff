"""The FastAPI app factory: ``create_app(settings)`` wires the database, the live index and the routes.

Run it with ``techmatch serve`` (uvicorn). At startup the saved index is loaded and re-synced with the
database, so every write the API acknowledged is searchable after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.deps import Services
from service.api.responses import ERROR_RESPONSES
from service.api.routes import (
    audit,
    campaigns,
    feedback,
    health,
    matching,
    metrics,
    needs,
    partners,
    results,
    triage,
)
from service.core.config import ServiceSettings
from service.core.db import describe, make_engine, make_sessions
from service.core.security import CallerCache
from service.core.sync import IndexSync
from service.core.throttle import Limit
from service.core.vectors import choose_backend
from service.errors import install_error_handlers
from service.ops.docs import add_docs_routes
from service.ops.headers import SecurityHeaders, proxy_layer
from service.ops.heap import freeze_loaded_heap
from service.ops.logs import RequestId
from service.ops.metrics import RequestMetrics
from service.web import mount_web

log = logging.getLogger("techmatch.service")

DESCRIPTION = """Match enterprise technical needs (企业出题) with university research results (科技成果).

Authenticate with the **X-API-Key** header (create a key with `techmatch keys create --role broker`).
A broker key sees and does everything; an enterprise key sees and changes only its own needs and their matches.
"""


def open_services(settings: ServiceSettings) -> Services:
    """Connect the database and load the index, re-syncing it with the database."""
    url = settings.resolved_database_url
    engine = make_engine(url)
    sessions = make_sessions(engine)
    pipeline = choose_backend(settings.pipeline, engine)
    sync = IndexSync(settings.resolved_index_dir, pipeline, settings.batch_queries,
                     settings.parallel_batches, settings.save_interval, settings.save_every)
    report = sync.open(sessions)
    log.info("database %s; index %s, dense vectors in %s (%s)", describe(url), settings.resolved_index_dir,
             pipeline.ann_backend, report.summary())
    if settings.freeze_heap:
        frozen, seconds = freeze_loaded_heap()
        log.info("%d loaded objects kept out of the garbage collector's full passes (%.1f s)", frozen, seconds)
    key_limit = Limit(settings.key_failures_max_per_address, settings.key_failures_window_seconds)
    return Services(settings, engine, sessions, sync, CallerCache(sessions, key_limit))


class BodyLimit:
    """Refuses a body whose declared length is over the limit, before reading it (413).

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` wraps every response in an extra task
    and stream, which cost about a millisecond of CPU per request under load."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
            if length.isdigit() and int(length) > self.limit:
                response = JSONResponse({"detail": f"request body of {length} bytes is larger than the limit of "
                                                   f"{self.limit} bytes"}, status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def operation_id(route: APIRoute) -> str:
    """Stable operation ids (the route function's name, e.g. ``list_needs``) for clients generated from
    ``/openapi.json``; FastAPI's default appends the path and method, which change with every refactor."""
    return route.name


class App(FastAPI):
    """FastAPI with the operations layers around its whole stack, Starlette's error middleware included, so
    a 500 answer also carries the security headers and is counted: outermost the trusted proxy's headers
    (the client's address and scheme), then the request id and access log, the metrics, the headers."""

    def __init__(self, settings: ServiceSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.operations = settings

    def build_middleware_stack(self) -> ASGIApp:
        settings = self.operations
        app: ASGIApp = SecurityHeaders(super().build_middleware_stack(), settings.https_only, settings.hsts_seconds)
        app = RequestMetrics(app)
        app = RequestId(app, access=settings.log_json)
        return proxy_layer(app, settings.trusted_proxies)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """A new app; the database and index are opened when it starts (lifespan), closed when it stops."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = open_services(settings)
        try:
            yield
        finally:
            app.state.services.sync.close()
            app.state.services.db.dispose()

    app = App(settings, title="techmatch", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
              generate_unique_id_function=operation_id, responses=ERROR_RESPONSES, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    add_docs_routes(app)  # FastAPI's docs pages under a policy of their own (service/ops/docs.py)

    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    for module in (health, matching, needs, results, triage, feedback, partners, campaigns, audit, metrics):
        app.include_router(module.router)
    mount_web(app)  # the workbench pages under /web (after the JSON error handlers, which it wraps for /web)
    return app
