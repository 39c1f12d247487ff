"""A request id on every request and, optionally (``TECHMATCH_LOG_JSON``), logs as JSON lines with it.

The id is the caller's ``X-Request-ID`` when it is a sane token (a proxy or client that already names its
requests keeps its name), else a new one; it is echoed in the response's ``X-Request-ID`` and put on every
log record made while the request runs (``request_id``), so one line of a client's report finds the
server's lines. In JSON mode each request also writes one access line (``techmatch.access``).
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.ops.metrics import route_of

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("techmatch.access")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class RequestId:
    """Takes or makes the request id, echoes it, and (``access=True``) logs one access line per request."""

    def __init__(self, app: ASGIApp, access: bool = False) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if SANE_ID.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*(h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access:
                client = scope.get("client")
                access_log.info("%s %s %s", scope["method"], scope["path"], status, extra={
                    "method": scope["method"], "path": scope["path"], "route": route_of(scope), "status": status,
                    "duration_ms": round(1000 * (time.perf_counter() - start), 2),
                    "client": client[0] if client else ""})
            REQUEST_ID.reset(token)


def log_config(json_lines: bool, level: int | str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service and uvicorn (uvicorn applies it in every worker too):
    JSON lines with ``request_id`` when ``json_lines``, else the usual ``LEVEL name: message`` text."""
    if json_lines:
        formatter: dict[str, Any] = {"()": "pythonjsonlogger.json.JsonFormatter",
                                     "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                                     "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}}
    else:
        formatter = {"format": "%(levelname)s %(name)s: %(message)s"}
    level = level.upper() if isinstance(level, str) else level
    handler = {"class": "logging.StreamHandler", "formatter": "main", "filters": ["request_id"],
               "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "service.ops.logs.RequestIdFilter"}},
        "formatters": {"main": formatter}, "handlers": {"main": handler},
        "loggers": {name: {"handlers": ["main"], "level": level, "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "techmatch")}
        | {"uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
        "root": {"handlers": ["main"], "level": level},
    }
