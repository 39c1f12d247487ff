"""Needs: create, read, update, delete (single, bulk, upload) and their matching results.

An enterprise key works only on its own needs: others' needs answer 404, as if they did not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Query, Response, UploadFile
from sqlalchemy.orm import Session

from recommender.filters import ResultFilters
from service.api.deps import BrokerDep, CallerDep, EngineDep, PagingDep, ServicesDep, SessionDep
from service.api.responses import NeedOut, Page, ResultMatchesOut, ResultMatchOut, WriteOut
from service.api.schemas import JudgementIn, NeedCreate, NeedIn
from service.api.uploads import check_bulk, read_upload
from service.core import catalog
from service.core.config import MAX_K
from service.core.errors import Forbidden, NotFound
from service.core.models import NeedRow
from service.core.relevance import ranked_with_feedback, record_judgement
from service.core.security import Caller

router = APIRouter(prefix="/needs", tags=["needs"])


def _own_row(session: Session, caller: Caller, need_id: str) -> NeedRow:
    row = catalog.get_row(session, "need", need_id)
    if not caller.is_broker and row.enterprise != caller.enterprise:
        raise NotFound(f"unknown need id '{need_id}'")
    return row  # type: ignore[return-value]


def _scoped(body: NeedIn, caller: Caller) -> NeedIn:
    """An enterprise key's needs always carry its own enterprise id."""
    if caller.is_broker:
        return body
    if body.enterprise not in (None, caller.enterprise):
        raise Forbidden(f"this key speaks for enterprise '{caller.enterprise}', not '{body.enterprise}'")
    return body.model_copy(update={"enterprise": caller.enterprise})


def need_out(row: NeedRow) -> NeedOut:
    return NeedOut.model_validate(catalog.row_out(row))


@router.get("", summary="List needs (an enterprise key sees its own)")
def list_needs(session: SessionDep, caller: CallerDep, paging: PagingDep,
               enterprise: Annotated[str | None, Query(description="only this enterprise's needs")] = None
               ) -> Page[NeedOut]:
    if not caller.is_broker:
        enterprise = caller.enterprise
    rows, total = catalog.list_rows(session, "need", paging.offset, paging.limit, enterprise=enterprise)
    return Page[NeedOut](items=[need_out(r) for r in rows], total=total, offset=paging.offset, limit=paging.limit)


@router.post("", status_code=201, summary="Create a need")
def create_need(body: NeedCreate, session: SessionDep, caller: CallerDep, services: ServicesDep) -> NeedOut:
    record = _scoped(body, caller).to_record("need")
    catalog.create_records(session, services.sync, "need", [record])
    return need_out(catalog.get_row(session, "need", record.id))  # type: ignore[arg-type]


@router.post("/bulk", status_code=201, summary="Create many needs (all or nothing)")
def create_needs(body: Annotated[list[NeedCreate], Body(min_length=1)], session: SessionDep, caller: CallerDep,
                 services: ServicesDep,
                 replace: Annotated[bool, Query(description="replace needs whose id exists")] = False) -> WriteOut:
    records = [_scoped(item, caller).to_record("need") for item in body]
    check_bulk(records, "need", text_limit=None)
    if replace and not caller.is_broker:
        for record in records:
            existing = session.get(NeedRow, record.id)
            if existing is not None and existing.enterprise != caller.enterprise:
                raise Forbidden(f"need '{record.id}' belongs to another enterprise")
    catalog.create_records(session, services.sync, "need", records, replace=replace)
    return WriteOut(written=len(records), ids=[r.id for r in records])


@router.post("/upload", status_code=201, summary="Upload needs (.jsonl, .csv, .xlsx)")
def upload_needs(session: SessionDep, caller: BrokerDep, services: ServicesDep,
                 file: Annotated[UploadFile, File(description="JSON Lines, CSV or Excel with the contract's columns")],
                 replace: Annotated[bool, Query(description="replace needs whose id exists")] = False) -> WriteOut:
    records = read_upload(file, "need", services.settings.max_upload_bytes)
    catalog.create_records(session, services.sync, "need", records, replace=replace)
    return WriteOut(written=len(records), ids=[r.id for r in records])


@router.get("/{need_id}", summary="Read a need")
def read_need(need_id: str, session: SessionDep, caller: CallerDep) -> NeedOut:
    return need_out(_own_row(session, caller, need_id))


@router.put("/{need_id}", summary="Replace a need")
def update_need(need_id: str, body: NeedIn, session: SessionDep, caller: CallerDep,
                services: ServicesDep) -> NeedOut:
    _own_row(session, caller, need_id)
    if body.id is not None and body.id != need_id:
        raise Forbidden(f"the body's id '{body.id}' differs from the path's '{need_id}'; ids cannot be changed")
    record = _scoped(body, caller).to_record("need", need_id)
    return need_out(catalog.update_record(session, services.sync, "need", record))  # type: ignore[arg-type]


@router.delete("/{need_id}", status_code=204, summary="Delete a need")
def delete_need(need_id: str, session: SessionDep, caller: CallerDep, services: ServicesDep) -> Response:
    _own_row(session, caller, need_id)
    catalog.delete_record(session, services.sync, "need", need_id)
    return Response(status_code=204)


@router.get("/{need_id}/matches", summary="Top-k results for a stored need")
def need_matches(
    need_id: str, session: SessionDep, caller: CallerDep, engine: EngineDep,
    filters: Annotated[ResultFilters, Query()],
    k: Annotated[int, Query(ge=1, le=MAX_K, description=f"matches to return (1-{MAX_K})")] = 10,
    explain: bool = True,
    collapse_duplicates: Annotated[bool | None, Query(
        description="one match per duplicate group (default: the server's setting, on)")] = None,
    feedback: Annotated[bool, Query(description="re-rank by the need's judgements (without filters)")] = True,
) -> ResultMatchesOut:
    row = _own_row(session, caller, need_id)
    if feedback and not filters.active():
        matches, judged = ranked_with_feedback(session, engine, caller, need_id, k)
        if judged:
            return ResultMatchesOut(query=need_out(row), matches=[ResultMatchOut.of(m) for m in matches],
                                    judgements=len(judged))
    matches = engine.results_for([catalog.row_record(row, "need")], k, filters, explain,
                                 collapse=collapse_duplicates)[0]
    return ResultMatchesOut(query=need_out(row), matches=[ResultMatchOut.of(m) for m in matches])


@router.post("/{need_id}/judgements", summary="Judge a shown result (relevant / irrelevant); the re-ranked list")
def judge_match(need_id: str, body: JudgementIn, session: SessionDep, caller: CallerDep,
                engine: EngineDep) -> ResultMatchesOut:
    """An enterprise judges only its own needs' results (another's need answers 404, as if missing)."""
    record_judgement(session, caller, need_id, body.result_id, body.judgement, f"key:{caller.key_id}")
    matches, judged = ranked_with_feedback(session, engine, caller, need_id, body.k)
    return ResultMatchesOut(query=need_out(_own_row(session, caller, need_id)),
                            matches=[ResultMatchOut.of(m) for m in matches], judgements=len(judged))
