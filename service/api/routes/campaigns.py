"""Review campaigns for brokers (issue 20): create and list campaigns, where one stands (with the recall estimate),
the next results to read (held for the reader), and decisions. Enterprise keys get the broker routes' 403."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from service.api.deps import BrokerDep, PagingDep, ServicesDep, SessionDep, client_address
from service.api.responses import Page, ResultOut, UtcDatetime
from service.api.schemas import NOT_BLANK
from service.core import campaigns as C
from service.core import catalog
from service.core.config import MAX_NOTE_CHARS
from service.core.errors import NotFound
from service.core.models import CampaignDecisionRow, CampaignRow

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the campaign's id")]


class _CampaignBase(BaseModel):
    name: str = Field(..., min_length=1, max_length=C.MAX_NAME_CHARS, json_schema_extra=NOT_BLANK)


class CampaignAll(_CampaignBase):
    """Every stored result."""

    scope: Literal["all"]


class CampaignField(_CampaignBase):
    """The results of one field (领域)."""

    scope: Literal["field"]
    value: str = Field(..., min_length=1, max_length=300, json_schema_extra=NOT_BLANK)


class CampaignInstitution(_CampaignBase):
    """The results of one institution."""

    scope: Literal["institution"]
    value: str = Field(..., min_length=1, max_length=300, json_schema_extra=NOT_BLANK)


class CampaignSince(_CampaignBase):
    """The results added on or after a date."""

    scope: Literal["since"]
    value: date


CampaignIn = Annotated[CampaignAll | CampaignField | CampaignInstitution | CampaignSince,
                       Field(discriminator="scope")]


class DecisionIn(BaseModel):
    result_id: str = Field(..., min_length=1, max_length=200)
    decision: Literal["transferable", "not_transferable", "skip"]
    note: str = Field("", max_length=MAX_NOTE_CHARS)


class EstimateOut(BaseModel):
    """The model's estimate of the recall reached (its 95% interval) and the knee method's verdict."""

    found: int
    expected_remaining: float
    recall: float
    recall_low: float
    recall_high: float
    stop: bool


class ModelOut(BaseModel):
    state: Literal["queued", "building", "refitting", "ready", "failed"]
    step: str
    percent: int
    seconds: float
    decisions_learnt: int
    error: str | None = None


class StatusOut(BaseModel):
    pool: int
    decided: int
    read: int = Field(description="decided transferable or not (skips are not counted as reads)")
    found: int = Field(description="decided transferable")
    skipped: int
    remaining: int
    gains: list[int] = Field(description="transferable found after each read, in reading order")
    estimate: EstimateOut | None = Field(None, description="none before a transferable result is found")
    stop: bool = Field(description="stopping is reasonable (knee method, or nothing left to read)")
    stop_reason: str
    slope_ratio: float
    method: str


class CampaignOut(BaseModel):
    id: int
    name: str
    scope: str
    value: str
    status: Literal["open", "closed"]
    pool_size: int
    created_by: str
    created_at: UtcDatetime
    progress: StatusOut | None = Field(None, description="where it stands (in single-campaign answers)")
    model: ModelOut | None = None


class DecisionOut(BaseModel):
    id: int
    campaign_id: int
    result_id: str
    decision: Literal["transferable", "not_transferable", "skip"]
    note: str
    who: str
    created_at: UtcDatetime


class NextOut(BaseModel):
    items: list[ResultOut] = Field(description="the results to read, best first, held for this caller")
    held_seconds: float
    model: ModelOut
    done: bool = Field(description="nothing is left to read in this campaign (or it is closed)")


def _campaign_out(row: CampaignRow, status: C.CampaignStatus | None = None,
                  model: C.ModelState | None = None) -> CampaignOut:
    return CampaignOut(id=row.id, name=row.name, scope=row.scope, value=row.scope_value, status=row.status,  # type: ignore[arg-type]
                       pool_size=row.pool_size, created_by=row.created_by, created_at=row.created_at,
                       progress=StatusOut.model_validate(status.to_dict()) if status is not None else None,
                       model=ModelOut.model_validate(model.to_dict()) if model is not None else None)


def _decision_out(row: CampaignDecisionRow) -> DecisionOut:
    return DecisionOut(id=row.id, campaign_id=row.campaign_id, result_id=row.result_id, decision=row.decision,  # type: ignore[arg-type]
                       note=row.note, who=row.who, created_at=row.created_at)


@router.post("", status_code=201, summary="Open a review campaign over a set of results (brokers)")
def create_campaign(body: CampaignIn, request: Request, session: SessionDep, caller: BrokerDep,
                    services: ServicesDep) -> CampaignOut:
    """Seeded by the shortlist's one-shot order; the model is built in the background (``model.state``). A scope
    that covers no stored result answers 409 (nothing stored yet to review)."""
    value = getattr(body, "value", "")
    row = C.create_campaign(session, caller, body.name, body.scope, value.isoformat() if isinstance(value, date)
                            else value, client_address(request))
    model = services.campaigns.state(row.id)
    return _campaign_out(row, C.campaign_status(session, row, model), model)


@router.get("", summary="List review campaigns, newest first (brokers)")
def list_campaigns(session: SessionDep, caller: BrokerDep, paging: PagingDep) -> Page[CampaignOut]:
    rows, total = C.list_campaigns(session, paging.offset, paging.limit)
    return Page[CampaignOut](items=[_campaign_out(r) for r in rows], total=total, offset=paging.offset,
                             limit=paging.limit)


@router.get("/{campaign_id}", summary="A campaign, where it stands and the estimate of recall reached (brokers)")
def read_campaign(campaign_id: CampaignId, session: SessionDep, caller: BrokerDep,
                  services: ServicesDep) -> CampaignOut:
    row = C.get_campaign(session, campaign_id)
    model = services.campaigns.state(row.id, C.signature(session, row.id))
    return _campaign_out(row, C.campaign_status(session, row, model), model)


@router.post("/{campaign_id}/next", summary="The next results to read, held for the caller (brokers)")
def next_results(campaign_id: CampaignId, session: SessionDep, caller: BrokerDep, services: ServicesDep,
                 k: Annotated[int, Query(ge=1, le=C.MAX_NEXT)] = 1) -> NextOut:
    """Nobody else is given a held result until it is decided or its hold runs out
    (``TECHMATCH_REVIEW_HOLD_SECONDS``). While the model is first built (``model.state`` building) the list is
    empty: ask again."""
    row = C.get_campaign(session, campaign_id)
    hold = services.settings.review_hold_seconds
    ids, model = C.next_results(session, services.campaigns, row, caller, k, hold)
    items: list[Any] = []
    for rid in ids:
        try:
            items.append(ResultOut.model_validate(catalog.row_out(catalog.get_row(session, "result", rid))))
        except NotFound:  # deleted since the campaign began: nothing to read
            continue
    left = row.pool_size - C.signature(session, row.id)[0]
    return NextOut(items=items, held_seconds=hold, model=ModelOut.model_validate(model.to_dict()),
                   done=row.status != "open" or left <= 0)


@router.post("/{campaign_id}/decisions", status_code=201, summary="Decide a result of a campaign (brokers)")
def add_decision(campaign_id: CampaignId, body: DecisionIn, request: Request, session: SessionDep,
                 caller: BrokerDep, services: ServicesDep) -> DecisionOut:
    """The latest decision on a result wins; the model refits in the background (the answer does not wait)."""
    row = C.get_campaign(session, campaign_id)
    decided = C.decide(session, services.campaigns, row, caller, body.result_id, body.decision, body.note,
                       client_address(request))
    return _decision_out(decided)


@router.get("/{campaign_id}/decisions", summary="A campaign's decisions in reading order (brokers)")
def list_decisions(campaign_id: CampaignId, session: SessionDep, caller: BrokerDep,
                   paging: PagingDep) -> Page[DecisionOut]:
    C.get_campaign(session, campaign_id)
    rows = C.decisions(session, campaign_id)
    return Page[DecisionOut](items=[_decision_out(r) for r in rows[paging.offset:paging.offset + paging.limit]],
                             total=len(rows), offset=paging.offset, limit=paging.limit)
