"""``GET /metrics``: Prometheus's text format, for brokers only (an API key, as ``X-API-Key`` or as
``Authorization: Bearer``, which is what Prometheus's ``authorization`` scrape setting sends).

On the API's own port: one listener to secure and proxy, and the key check and its throttle are the API's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from service.api.deps import ServicesDep, get_broker, get_caller
from service.core.security import Caller
from service.ops.metrics import exposition

router = APIRouter(tags=["operations"])


def metrics_caller(request: Request, services: ServicesDep,
                   x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
                   authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> Caller:
    key = x_api_key
    if not key and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    return get_caller(request, services, key)


async def metrics_broker(caller: Annotated[Caller, Depends(metrics_caller)]) -> Caller:
    return await get_broker(caller)


@router.get("/metrics", summary="Prometheus metrics (broker key)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(services: ServicesDep, _: Annotated[Caller, Depends(metrics_broker)]) -> Response:
    return Response(exposition(services), media_type=CONTENT_TYPE_LATEST)
