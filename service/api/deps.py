"""Injected dependencies: the app's services, a database session per request, the caller and paging."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from recommender.engine import Engine
from service.core.audit import Actor
from service.core.campaigns import CampaignModels
from service.core.config import MAX_OFFSET, MAX_PAGE_SIZE, ServiceSettings
from service.core.errors import Forbidden, ServiceError
from service.core.security import Caller, CallerCache
from service.core.sync import IndexSync
from service.core.throttle import Throttled


@dataclass
class Services:
    """What every request may need, created once by the app factory."""

    settings: ServiceSettings
    db: DbEngine
    sessions: sessionmaker[Session]
    sync: IndexSync
    callers: CallerCache
    campaigns: CampaignModels = field(default=None)  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.campaigns is None:  # each process keeps its own review models (service/core/campaigns.py)
            self.campaigns = CampaignModels(self.sessions, self.sync)

    @property
    def engine(self) -> Engine:
        return self.sync.engine


async def get_services(request: Request) -> Services:  # async: no I/O, so no hop to the thread pool
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_engine(services: ServicesDep) -> Engine:
    """The engine, after replaying writes other worker processes committed since this one last searched."""
    services.sync.catch_up(search=True)
    return services.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="an API key from 'techmatch keys create'")


def client_address(request: Request) -> str:
    """The caller's address (behind a proxy named in TECHMATCH_TRUSTED_PROXIES, the client's it forwarded)."""
    return request.client.host if request.client else ""


def get_caller(request: Request, services: ServicesDep,
               key: Annotated[str | None, Security(api_key_header)]) -> Caller:
    if not key:
        raise ServiceError("missing API key: send it in the X-API-Key header (create one with "
                           "'techmatch keys create --role broker')", 401)
    try:
        caller = services.callers.find(key, client_address(request))
    except Throttled as exc:
        raise ServiceError(f"too many invalid API keys from this address: retry after {exc.retry_after} s "
                           "(请求过于频繁，请稍后再试)", 429, {"Retry-After": str(exc.retry_after)}) from None
    if caller is None:
        raise ServiceError("invalid API key", 401)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_broker(caller: CallerDep) -> Caller:
    if not caller.is_broker:
        raise Forbidden("this needs a broker key; enterprise keys see only their own needs and matches")
    return caller


BrokerDep = Annotated[Caller, Depends(get_broker)]


async def get_actor(request: Request, caller: CallerDep) -> Actor:  # async: no I/O
    """The caller as the audit log names it (``key:<key id>``), with its address and enterprise."""
    return Actor(f"key:{caller.key_id}", client_address(request), caller.enterprise)


ActorDep = Annotated[Actor, Depends(get_actor)]


@dataclass
class Paging:
    offset: int
    limit: int


async def get_paging(
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"items per page (max {MAX_PAGE_SIZE})")] = 50,
) -> Paging:
    return Paging(offset, limit)


PagingDep = Annotated[Paging, Depends(get_paging)]
