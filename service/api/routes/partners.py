"""Enterprises and funds: brokers see all of them; an enterprise key sees only its own record."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.api.deps import BrokerDep, CallerDep, Paging, PagingDep, SessionDep
from service.api.responses import EnterpriseOut, FundOut, Page
from service.core.errors import NotFound
from service.core.models import EnterpriseRow, FundRow

M = TypeVar("M", EnterpriseOut, FundOut)
router = APIRouter(tags=["enterprises and funds"])


def _page(session: Session, row_type: type[EnterpriseRow] | type[FundRow], model: type[M], paging: Paging) -> Page[M]:
    total = session.scalar(select(func.count()).select_from(row_type)) or 0
    rows = session.scalars(select(row_type).order_by(row_type.id).offset(paging.offset).limit(paging.limit)).all()
    return Page[model](items=[model.model_validate(r.data) for r in rows], total=total,  # type: ignore[valid-type]
                       offset=paging.offset, limit=paging.limit)


@router.get("/enterprises", summary="List enterprises with contacts (brokers)")
def list_enterprises(session: SessionDep, caller: BrokerDep, paging: PagingDep) -> Page[EnterpriseOut]:
    return _page(session, EnterpriseRow, EnterpriseOut, paging)


@router.get("/enterprises/{enterprise_id}", summary="Read an enterprise (brokers, or the enterprise itself)")
def read_enterprise(enterprise_id: str, session: SessionDep, caller: CallerDep) -> EnterpriseOut:
    row = session.get(EnterpriseRow, enterprise_id)
    if row is None or not (caller.is_broker or caller.enterprise == enterprise_id):
        raise NotFound(f"unknown enterprise id '{enterprise_id}'")
    return EnterpriseOut.model_validate(row.data)


@router.get("/funds", summary="List seed/angel funds (brokers)")
def list_funds(session: SessionDep, caller: BrokerDep, paging: PagingDep) -> Page[FundOut]:
    return _page(session, FundRow, FundOut, paging)


@router.get("/funds/{fund_id}", summary="Read a fund (brokers)")
def read_fund(fund_id: str, session: SessionDep, caller: BrokerDep) -> FundOut:
    row = session.get(FundRow, fund_id)
    if row is None:
        raise NotFound(f"unknown fund id '{fund_id}'")
    return FundOut.model_validate(row.data)
