"""Needs: create, read, update, delete (single, bulk, upload) and their matching results.

An enterprise key works only on its own needs: another owner's need answers exactly as a missing one (404 to
read, change or delete; created anew under that id, as the enterprise sees it: see ``service.core.ids``). An
omitted id is assigned by the server and returned. Every write is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Query, Response, UploadFile
from sqlalchemy.orm import Session

from recommender.filters import ResultFilters
from service.api.deps import ActorDep, BrokerDep, CallerDep, EngineDep, PagingDep, ServicesDep, SessionDep
from service.api.responses import NeedOut, Page, ResultMatchesOut, ResultMatchOut, WriteOut
from service.api.schemas import JudgementIn, NeedCreate, NeedIn
from service.api.uploads import check_bulk, check_unique_ids, read_upload
from service.core import catalog
from service.core.audit import Actor
from service.core.config import MAX_K
from service.core.errors import Forbidden, NotFound
from service.core.ids import find_need, place_needs, shown_id
from service.core.models import NeedRow
from service.core.relevance import ranked_with_feedback, record_judgement
from service.core.security import Caller

router = APIRouter(prefix="/needs", tags=["needs"])


def _own_row(session: Session, caller: Caller, need_id: str) -> NeedRow:
    row = find_need(session, caller, need_id)
    if row is None:
        raise NotFound(f"unknown need id '{need_id}'")
    return row


def _scoped(body: NeedIn, caller: Caller) -> NeedIn:
    """An enterprise key's needs always carry its own enterprise id."""
    if caller.is_broker:
        return body
    if body.enterprise not in (None, caller.enterprise):
        raise Forbidden(f"this key speaks for enterprise '{caller.enterprise}', not '{body.enterprise}'")
    return body.model_copy(update={"enterprise": caller.enterprise})


def need_out(row: NeedRow, caller: Caller | None = None) -> NeedOut:
    """The need as this caller knows it (an enterprise sees the id it asked for)."""
    out = catalog.row_out(row)
    if caller is not None:
        out["id"] = shown_id(row, caller)
    return NeedOut.model_validate(out)


def _placed(session: Session, caller: Caller, bodies: list[NeedIn],
            replace: bool = False) -> tuple[list, dict[str, str], list[str]]:
    """Records under their stored ids, the aliases of the new ones, and the ids as the caller knows them."""
    check_unique_ids([b.id for b in bodies if b.id])
    places = place_needs(session, caller, [b.id for b in bodies], replace)
    records = [_scoped(b, caller).to_record("need", stored) for b, (stored, _) in zip(bodies, places, strict=True)]
    aliases = {stored: alias for stored, alias in places if alias}
    return records, aliases, [alias or stored for stored, alias in places]


def _log_writes(session: Session, actor: Actor, action: str, records: list, shown: list[str]) -> None:
    """One audit entry per enterprise the written needs belong to (a bulk write: its count and first ids)."""
    by_owner: dict[str | None, list[str]] = {}
    for record, name in zip(records, shown, strict=True):
        by_owner.setdefault(record.extra.get("enterprise"), []).append(name)
    for owner, names in by_owner.items():
        listed = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        actor.log(session, action, f"need × {len(names)}: {listed}", account=owner)


@router.get("", summary="List needs (an enterprise key sees its own)")
def list_needs(session: SessionDep, caller: CallerDep, paging: PagingDep,
               enterprise: Annotated[str | None, Query(description="only this enterprise's needs")] = None
               ) -> Page[NeedOut]:
    if not caller.is_broker:
        enterprise = caller.enterprise
    rows, total = catalog.list_rows(session, "need", paging.offset, paging.limit, enterprise=enterprise)
    return Page[NeedOut](items=[need_out(r, caller) for r in rows], total=total, offset=paging.offset,
                         limit=paging.limit)


@router.post("", status_code=201, summary="Create a need (omit the id and the server assigns one)")
def create_need(body: NeedCreate, session: SessionDep, caller: CallerDep, services: ServicesDep,
                actor: ActorDep) -> NeedOut:
    records, aliases, shown = _placed(session, caller, [body])
    catalog.create_records(session, services.sync, "need", records, aliases=aliases)
    _log_writes(session, actor, "record.created", records, shown)
    return need_out(catalog.get_row(session, "need", records[0].id), caller)  # type: ignore[arg-type]


@router.post("/bulk", status_code=201, summary="Create many needs (all or nothing; omitted ids are assigned)")
def create_needs(body: Annotated[list[NeedCreate], Body(min_length=1)], session: SessionDep, caller: CallerDep,
                 services: ServicesDep, actor: ActorDep,
                 replace: Annotated[bool, Query(description="replace needs whose id exists")] = False) -> WriteOut:
    records, aliases, shown = _placed(session, caller, list(body), replace)
    check_bulk(records, "need", text_limit=None)
    catalog.create_records(session, services.sync, "need", records, replace=replace, aliases=aliases)
    _log_writes(session, actor, "record.created", records, shown)
    return WriteOut(written=len(records), ids=shown)


@router.post("/upload", status_code=201, summary="Upload needs (.jsonl, .csv, .xlsx)")
def upload_needs(session: SessionDep, caller: BrokerDep, services: ServicesDep, actor: ActorDep,
                 file: Annotated[UploadFile, File(description="JSON Lines, CSV or Excel with the contract's columns")],
                 replace: Annotated[bool, Query(description="replace needs whose id exists")] = False) -> WriteOut:
    records = read_upload(file, "need", services.settings.max_upload_bytes)
    catalog.create_records(session, services.sync, "need", records, replace=replace)
    actor.log(session, "upload", f"needs: {len(records)} written from {file.filename or 'a file'}")
    return WriteOut(written=len(records), ids=[r.id for r in records])


@router.get("/{need_id}", summary="Read a need")
def read_need(need_id: str, session: SessionDep, caller: CallerDep) -> NeedOut:
    return need_out(_own_row(session, caller, need_id), caller)


@router.put("/{need_id}", summary="Replace a need")
def update_need(need_id: str, body: NeedIn, session: SessionDep, caller: CallerDep,
                services: ServicesDep, actor: ActorDep) -> NeedOut:
    row = _own_row(session, caller, need_id)
    if body.id is not None and body.id != need_id:
        raise Forbidden(f"the body's id '{body.id}' differs from the path's '{need_id}'; ids cannot be changed")
    record = _scoped(body, caller).to_record("need", row.id)
    row = catalog.update_record(session, services.sync, "need", record)  # type: ignore[assignment]
    actor.log(session, "record.updated", f"need {need_id}", account=row.enterprise)
    return need_out(row, caller)


@router.delete("/{need_id}", status_code=204, summary="Delete a need")
def delete_need(need_id: str, session: SessionDep, caller: CallerDep, services: ServicesDep,
                actor: ActorDep) -> Response:
    row = _own_row(session, caller, need_id)
    owner = row.enterprise
    catalog.delete_record(session, services.sync, "need", row.id)
    actor.log(session, "record.deleted", f"need {need_id}", account=owner)
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
            return ResultMatchesOut(query=need_out(row, caller), matches=[ResultMatchOut.of(m) for m in matches],
                                    judgements=len(judged))
    matches = engine.results_for([catalog.row_record(row, "need")], k, filters, explain,
                                 collapse=collapse_duplicates)[0]
    return ResultMatchesOut(query=need_out(row, caller), matches=[ResultMatchOut.of(m) for m in matches])


@router.post("/{need_id}/judgements", summary="Judge a shown result (relevant / irrelevant); the re-ranked list")
def judge_match(need_id: str, body: JudgementIn, session: SessionDep, caller: CallerDep,
                engine: EngineDep, actor: ActorDep) -> ResultMatchesOut:
    """An enterprise judges only its own needs' results (another's need answers 404, as if missing)."""
    record_judgement(session, caller, need_id, body.result_id, body.judgement, f"key:{caller.key_id}")
    actor.log(session, "judgement", f"need {need_id}, result {body.result_id}: {body.judgement}",
              account=_own_row(session, caller, need_id).enterprise)
    matches, judged = ranked_with_feedback(session, engine, caller, need_id, body.k)
    return ResultMatchesOut(query=need_out(_own_row(session, caller, need_id), caller),
                            matches=[ResultMatchOut.of(m) for m in matches], judgements=len(judged))
