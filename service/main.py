"""The FastAPI app factory: ``create_app(settings)`` wires the database, the live index and the routes.

Run it with ``techmatch serve`` (uvicorn). At startup the saved index is loaded and re-synced with the
database, so every write the API acknowledged is searchable after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.api.deps import Services
from service.api.routes import feedback, health, matching, needs, partners, results, triage
from service.core.config import ServiceSettings
from service.core.db import describe, make_engine, make_sessions
from service.core.live_index import LiveIndex
from service.errors import install_error_handlers

log = logging.getLogger("techmatch.service")

DESCRIPTION = """Match enterprise technical needs (企业出题) with university research results (科技成果).

Authenticate with the **X-API-Key** header (create a key with `techmatch keys create --role broker`).
A broker key sees and does everything; an enterprise key sees and changes only its own needs and their matches.
"""


def open_services(settings: ServiceSettings, progress: bool = False) -> Services:
    """Connect the database and load the index, re-syncing it with the database."""
    url = settings.resolved_database_url
    engine = make_engine(url)
    sessions = make_sessions(engine)
    live = LiveIndex(settings.resolved_index_dir, settings.pipeline, settings.batch_queries)
    report = live.open(sessions, progress=progress)
    log.info("database %s; index %s (%s)", describe(url), settings.resolved_index_dir, report.summary())
    return Services(settings, engine, sessions, live)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """A new app; the database and index are opened when it starts (lifespan), closed when it stops."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = open_services(settings)
        try:
            yield
        finally:
            app.state.services.engine.dispose()

    app = FastAPI(title="techmatch", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # refuse oversized bodies before reading them
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload_bytes:
            return JSONResponse({"detail": f"request body of {length} bytes is larger than the limit of "
                                           f"{settings.max_upload_bytes} bytes"}, status_code=413)
        return await call_next(request)

    for module in (health, matching, needs, results, triage, feedback, partners):
        app.include_router(module.router)
    return app
