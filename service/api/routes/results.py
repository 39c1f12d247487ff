"""Research results: anyone with a key reads them; brokers write them (audited; an omitted id is assigned by
the server and returned) and push them to needs and funds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Query, Response, UploadFile

from recommender.filters import ResultFilters
from service.api.deps import ActorDep, BrokerDep, CallerDep, EngineDep, PagingDep, ServicesDep, SessionDep
from service.api.responses import NeedMatchesOut, NeedMatchOut, Page, ResultOut, WriteOut
from service.api.schemas import ResultCreate, ResultIn
from service.api.uploads import check_bulk, read_upload
from service.core import catalog
from service.core.config import MAX_K
from service.core.errors import ServiceError
from service.core.ids import new_id
from service.core.models import ResultRow

router = APIRouter(prefix="/results", tags=["results"])


def result_out(row: ResultRow) -> ResultOut:
    return ResultOut.model_validate(catalog.row_out(row))


@router.get("", summary="List results, filtered by field, institution, TRL, IP status")
def list_results(session: SessionDep, caller: CallerDep, paging: PagingDep,
                 filters: Annotated[ResultFilters, Query()]) -> Page[ResultOut]:
    rows, total = catalog.list_rows(session, "result", paging.offset, paging.limit, filters=filters)
    return Page[ResultOut](items=[result_out(r) for r in rows], total=total, offset=paging.offset,
                           limit=paging.limit)


@router.post("", status_code=201, summary="Create a result")
def create_result(body: ResultCreate, session: SessionDep, caller: BrokerDep, services: ServicesDep,
                  actor: ActorDep) -> ResultOut:
    record = body.to_record("result", body.id or new_id(session, "result"))
    catalog.create_records(session, services.sync, "result", [record])
    actor.log(session, "record.created", f"result × 1: {record.id}")
    return result_out(catalog.get_row(session, "result", record.id))  # type: ignore[arg-type]


@router.post("/bulk", status_code=201, summary="Create many results (all or nothing)")
def create_results(body: Annotated[list[ResultCreate], Body(min_length=1)], session: SessionDep, caller: BrokerDep,
                   services: ServicesDep, actor: ActorDep,
                   replace: Annotated[bool, Query(description="replace results whose id exists")] = False) -> WriteOut:
    taken = {item.id for item in body if item.id}
    records = []
    for item in body:
        record_id = item.id or new_id(session, "result", taken)
        taken.add(record_id)
        records.append(item.to_record("result", record_id))
    check_bulk(records, "result", text_limit=None)
    duplicates = services.engine.existing_duplicates("result", records)
    catalog.create_records(session, services.sync, "result", records, replace=replace)
    listed = ", ".join(r.id for r in records[:20]) + (" ..." if len(records) > 20 else "")
    actor.log(session, "record.created", f"result × {len(records)}: {listed}")
    return WriteOut(written=len(records), ids=[r.id for r in records], duplicates_of_existing=duplicates)


@router.post("/upload", status_code=201, summary="Upload results (.jsonl, .csv, .xlsx)")
def upload_results(session: SessionDep, caller: BrokerDep, services: ServicesDep, actor: ActorDep,
                   file: Annotated[UploadFile, File(description="JSON Lines, CSV or Excel")],
                   replace: Annotated[bool, Query(description="replace results whose id exists")] = False) -> WriteOut:
    records = read_upload(file, "result", services.settings.max_upload_bytes)
    duplicates = services.engine.existing_duplicates("result", records)
    catalog.create_records(session, services.sync, "result", records, replace=replace)
    actor.log(session, "upload", f"results: {len(records)} written from {file.filename or 'a file'}")
    return WriteOut(written=len(records), ids=[r.id for r in records], duplicates_of_existing=duplicates)


@router.get("/{result_id}", summary="Read a result")
def read_result(result_id: str, session: SessionDep, caller: CallerDep) -> ResultOut:
    return result_out(catalog.get_row(session, "result", result_id))  # type: ignore[arg-type]


@router.put("/{result_id}", summary="Replace a result")
def update_result(result_id: str, body: ResultIn, session: SessionDep, caller: BrokerDep,
                  services: ServicesDep, actor: ActorDep) -> ResultOut:
    if body.id is not None and body.id != result_id:
        raise ServiceError(f"the body's id '{body.id}' differs from the path's '{result_id}'; ids cannot be changed",
                           422)
    catalog.get_row(session, "result", result_id)  # an unknown id is a 404, whatever the body holds
    record = body.to_record("result", result_id)
    row = catalog.update_record(session, services.sync, "result", record)
    actor.log(session, "record.updated", f"result {result_id}")
    return result_out(row)  # type: ignore[arg-type]


@router.delete("/{result_id}", status_code=204, summary="Delete a result")
def delete_result(result_id: str, session: SessionDep, caller: BrokerDep, services: ServicesDep,
                  actor: ActorDep) -> Response:
    catalog.delete_record(session, services.sync, "result", result_id)
    actor.log(session, "record.deleted", f"result {result_id}")
    return Response(status_code=204)


@router.get("/{result_id}/needs", summary="Top-k needs (and enterprises) for a result")
def result_needs(result_id: str, session: SessionDep, caller: BrokerDep, engine: EngineDep,
                 k: Annotated[int, Query(ge=1, le=MAX_K)] = 10, explain: bool = True) -> NeedMatchesOut:
    row = catalog.get_row(session, "result", result_id)
    matches = engine.needs_for([catalog.row_record(row, "result")], k, explain)[0]
    return NeedMatchesOut(query=result_out(row), matches=[NeedMatchOut.of(m) for m in matches])  # type: ignore[arg-type]
