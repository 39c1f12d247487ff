"""Liveness (the process answers) and readiness (database reachable, index loaded and in step with it)."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import ServicesDep
from service.api.responses import HealthOut, ReadyOut
from service.core.db import database_ok

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process is up")
def health() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/ready", summary="Readiness: database reachable and index in step with it", response_model=ReadyOut,
            responses={503: {"model": ReadyOut, "description": "not ready: the body says what is missing"}})
def ready(services: ServicesDep) -> JSONResponse:
    db = database_ok(services.db)
    sync = services.sync
    if db:
        sync.catch_up()
    counts = sync.counts()
    # "worker": which process answered (with `techmatch serve --workers N`, each holds its own index)
    body = ReadyOut(status="ready" if db and sync.in_sync else "not ready", database=db, index_in_sync=sync.in_sync,
                    results=counts["results"], needs=counts["needs"], worker=os.getpid())
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)
