"""Ids as a caller sees them: server-assigned when omitted, and never a tell of another owner's records.

An enterprise asking for a need id that another enterprise holds gets exactly what a missing id gets: 404 to
read, change or delete it, and 201 to create it. That last one is possible because the new need is then
stored under a fresh server-assigned id, with the id the enterprise sent kept as its ``alias`` (unique per
enterprise): that enterprise reads, changes and deletes it by the alias, sees the alias in every answer, and
the other owner's record is never touched. Brokers see every record under its stored id.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from recommender.records import Kind
from service.core.errors import Conflict
from service.core.models import NeedRow
from service.core.security import Caller
from service.core.sync import ROWS

PREFIX = {"need": "NW", "result": "RW"}


def new_id(session: Session, kind: Kind, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A fresh id no stored record (and none of ``taken``) has: NW/RW and 8 random hex digits."""
    while True:
        record_id = f"{PREFIX[kind]}{secrets.token_hex(4).upper()}"
        if record_id not in taken and session.get(ROWS[kind], record_id) is None:
            return record_id


def find_need(session: Session, caller: Caller, need_id: str) -> NeedRow | None:
    """The need this caller knows by ``need_id``, or None: an enterprise finds only its own (by alias first)."""
    if caller.is_broker:
        return session.get(NeedRow, need_id)
    aliased = session.scalar(select(NeedRow).where(NeedRow.enterprise == caller.enterprise,
                                                   NeedRow.alias == need_id))
    if aliased is not None:
        return aliased
    row = session.get(NeedRow, need_id)
    return row if row is not None and row.enterprise == caller.enterprise else None


def shown_id(row: NeedRow, caller: Caller) -> str:
    """The id this caller knows the need by (its enterprise: the alias, where there is one)."""
    return row.alias if row.alias and not caller.is_broker else row.id


def place_needs(session: Session, caller: Caller, wanted: list[str | None],
                replace: bool = False) -> list[tuple[str, str | None]]:
    """(stored id, alias) for each need to create: omitted ids are assigned; an enterprise's id held by another
    owner is stored under a fresh id with the asked one as alias; an id the caller itself holds is a conflict
    (or, with ``replace``, that record). Brokers keep the ids they send (``catalog`` answers 409 for existing)."""
    placed: list[tuple[str, str | None]] = []
    taken = {w for w in wanted if w}
    own_conflicts = []
    for asked in wanted:
        if not asked:
            fresh = new_id(session, "need", taken)
            taken.add(fresh)
            placed.append((fresh, None))
            continue
        if caller.is_broker:
            placed.append((asked, None))
            continue
        mine = find_need(session, caller, asked)
        if mine is not None:
            own_conflicts.append(asked)
            placed.append((mine.id, mine.alias))
        elif session.get(NeedRow, asked) is None:
            placed.append((asked, None))
        else:
            fresh = new_id(session, "need", taken)
            taken.add(fresh)
            placed.append((fresh, asked))
    if own_conflicts and not replace:
        shown = ", ".join(sorted(own_conflicts)[:10]) + (" ..." if len(own_conflicts) > 10 else "")
        raise Conflict(f"{len(own_conflicts)} need id(s) already exist: {shown}; nothing was written "
                       "(update them with PUT, or upload with ?replace=true)")
    return placed
