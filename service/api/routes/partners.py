"""Enterprises and funds: brokers see all of them; an enterprise key sees only its own record."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from service.api.deps import BrokerDep, CallerDep, PagingDep, SessionDep
from service.api.schemas import Page
from service.core.errors import NotFound
from service.core.models import EnterpriseRow, FundRow

router = APIRouter(tags=["enterprises and funds"])


def _page(session, row_type, paging) -> Page:
    total = session.scalar(select(func.count()).select_from(row_type)) or 0
    rows = session.scalars(select(row_type).order_by(row_type.id).offset(paging.offset).limit(paging.limit)).all()
    return Page(items=[r.data for r in rows], total=total, offset=paging.offset, limit=paging.limit)


@router.get("/enterprises", response_model=Page, summary="List enterprises with contacts (brokers)")
def list_enterprises(session: SessionDep, caller: BrokerDep, paging: PagingDep) -> Page:
    return _page(session, EnterpriseRow, paging)


@router.get("/enterprises/{enterprise_id}", summary="Read an enterprise (brokers, or the enterprise itself)")
def read_enterprise(enterprise_id: str, session: SessionDep, caller: CallerDep) -> dict:
    row = session.get(EnterpriseRow, enterprise_id)
    if row is None or not (caller.is_broker or caller.enterprise == enterprise_id):
        raise NotFound(f"unknown enterprise id '{enterprise_id}'")
    return row.data


@router.get("/funds", response_model=Page, summary="List seed/angel funds (brokers)")
def list_funds(session: SessionDep, caller: BrokerDep, paging: PagingDep) -> Page:
    return _page(session, FundRow, paging)


@router.get("/funds/{fund_id}", summary="Read a fund (brokers)")
def read_fund(fund_id: str, session: SessionDep, caller: BrokerDep) -> dict:
    row = session.get(FundRow, fund_id)
    if row is None:
        raise NotFound(f"unknown fund id '{fund_id}'")
    return row.data
