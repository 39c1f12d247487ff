"""Exception handlers: every expected problem becomes a 4xx with a readable ``detail``; anything else a
logged 500 whose body carries an incident id, never a traceback."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from recommender.ann.base import IndexLoadError, VectorDatabaseError
from recommender.errors import USER_ERRORS, EmptyIndexError, TechmatchError, UnknownIdError
from recommender.records import RecordFileError
from recommender.trec import JudgementFileError
from service.core.errors import ServiceError

log = logging.getLogger("techmatch.service")


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    place = loc[0] if loc and loc[0] in ("body", "query", "path", "header") else ""
    name = ".".join(parts)
    return f"{place} field '{name}'" if name else (f"request {place}" if place else "request")


def describe_errors(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """One readable sentence per problem, plus a JSON-safe list of them."""
    clean, sentences = [], []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "json_invalid":
            msg = "the body is not valid JSON (it must be UTF-8 encoded JSON)"
        elif e.get("type") == "missing":
            msg = "is required"
        elif e.get("type") == "too_short" and loc == ("body",):
            msg = "no records given: send a list of at least one record"
        sentences.append(f"{_where(loc)}: {msg}")
        clean.append({"loc": [str(p) for p in loc], "msg": msg, "type": str(e.get("type", ""))})
    return "; ".join(sentences) or "invalid request", clean


# The HTTP status of each kind of error the library raises for what a caller gave or asked for.
USER_ERROR_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (UnknownIdError, 404), (RecordFileError, 422), (JudgementFileError, 422), (EmptyIndexError, 409),
    (VectorDatabaseError, 503), (IndexLoadError, 409),
)


def user_error_status(exc: BaseException) -> int:
    """404 for an unknown id, 422 for a bad file, 409 for an index that cannot do it (yet), else 400."""
    return next((status for error, status in USER_ERROR_STATUS if isinstance(exc, error)), 400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = describe_errors(list(exc.errors()))
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> JSONResponse:
        detail, errors = describe_errors([dict(e) for e in exc.errors()])
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = "the body could not be read: send UTF-8 encoded JSON (or a multipart upload where one is expected)"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(TechmatchError)
    async def _user(_: Request, exc: Exception) -> JSONResponse:
        # The library's errors already say what is wrong in their message: only the status is the service's.
        return JSONResponse({"detail": str(exc)}, status_code=user_error_status(exc))

    for error in USER_ERRORS:
        if error is not TechmatchError:
            app.add_exception_handler(error, _user)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        if "NUL" in str(exc.orig):  # PostgreSQL's text holds no NUL character; SQLite's does
            return JSONResponse({"detail": "a text in the request contains a NUL character (\\u0000), which the "
                                           "database cannot store"}, status_code=422)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = secrets.token_hex(4)
        log.error("incident %s on %s %s", incident, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error (incident {incident}); it was logged"}, status_code=500)
