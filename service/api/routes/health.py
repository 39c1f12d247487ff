"""Liveness (the process answers) and readiness (database reachable, index loaded and in step with it)."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import ServicesDep
from service.core.db import database_ok

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process is up")
def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: database reachable and index in step with it")
def ready(services: ServicesDep) -> JSONResponse:
    db = database_ok(services.engine)
    live = services.live
    if db:
        live.catch_up()
    # "worker": which process answered (with `techmatch serve --workers N`, each holds its own index)
    body = {"database": db, "index_in_sync": live.in_sync, **live.counts(), "worker": os.getpid()}
    ok = db and live.in_sync
    return JSONResponse({"status": "ready" if ok else "not ready", **body}, status_code=200 if ok else 503)
