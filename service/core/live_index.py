"""The search index kept in step with the database: incremental on every write, re-synced at startup.

The database is the source of truth. Each record's content hash is stored with it; at startup the saved
index's records are hashed the same way, and every id that is missing, stale or deleted is re-indexed
(the embedding cache makes this cheap), so a crash between a database commit and an index save never
leaves the two disagreeing for longer than a restart.

While running, every write also appends to a change log in the database, and each process replays the
log before it searches (``catch_up``: one small query when nothing changed). So several worker processes
each hold an index of their own and still never answer from an index behind an acknowledged write. One
of them, the holder of a lock file in the index folder, saves the folder after changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recommender.ann.base import IndexLoadError
from recommender.hybrid import HybridIndex
from recommender.matcher import GRADER_FOLDER, MATCHER_MANIFEST, SIDES, Matcher
from recommender.pipeline import new_index, open_index
from recommender.records import Kind, Record, parse_record
from recommender.settings import PipelineSettings
from service.core.batching import SearchBatcher
from service.core.models import IndexChangeRow, NeedRow, ResultRow
from service.core.rwlock import ReadWriteLock

log = logging.getLogger("techmatch.service")
ROWS = {"need": NeedRow, "result": ResultRow}
_LATEST_CHANGE = select(func.max(IndexChangeRow.seq))
SYNC_BATCH = 2000
# Below this size a write refits the whole side (cheap, embeddings are cached), so a small catalogue's
# TF-IDF vocabulary is never frozen at its first few records; above it, updates are incremental.
REFIT_BELOW = 2000


def record_hash(record: Record, kind: Kind) -> str:
    """sha256 of the record's contract fields in canonical JSON: equal content, equal hash."""
    canonical = json.dumps(record.to_dict(kind), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def row_record(row: NeedRow | ResultRow, kind: Kind) -> Record:
    record, problems = parse_record(row.data, kind, "database", f"id {row.id}")
    if record is None:
        raise ValueError(f"stored {kind} '{row.id}' is damaged: {problems[0]}")
    return record


@dataclass
class SyncReport:
    """What a startup sync or rebuild changed, per side."""

    upserted: dict[str, int]
    deleted: dict[str, int]
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return self.rebuilt or any(self.upserted.values()) or any(self.deleted.values())

    def summary(self) -> str:
        parts = [f"{kind}s: +{self.upserted[kind]} -{self.deleted[kind]}" for kind in ROWS]
        return ("rebuilt; " if self.rebuilt else "synced; ") + ", ".join(parts)


class LiveIndex:
    """A Matcher over both sides, its folder, and the lock that keeps searches away from changes."""

    def __init__(
        self, folder: Path, settings: PipelineSettings, batch_queries: bool = True, parallel_batches: int | None = None
    ) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.lock = ReadWriteLock()
        self.matcher = Matcher(new_index("result", settings), new_index("need", settings))
        self.batcher = (SearchBatcher(lambda: self.side("result"), self.lock, max_parallel=parallel_batches)
                        if batch_queries else None)
        self.in_sync = False
        self.version = 0  # bumped on every change: derived answers (the shortlist) are cached per version
        self.sessions: sessionmaker[Session] | None = None
        self.applied_seq = 0  # the change log is replayed up to here
        self._replaying = threading.Lock()
        self._writer_lock: Any = None  # None: not claimed (a CLI process); False: another process holds it

    def side(self, kind: Kind) -> HybridIndex:
        index = self.matcher.results if kind == "result" else self.matcher.needs
        assert index is not None
        return index

    # -- startup ------------------------------------------------------------------------------
    def _load_side(self, kind: Kind) -> HybridIndex:
        folder = self.folder / SIDES[kind]
        if not folder.exists():
            return new_index(kind, self.settings)
        return open_index(folder, kind, self.settings)

    def _load_grader(self) -> Any | None:
        """A learned grader installed in the index folder ('techmatch train'); a damaged one is refused."""
        if not (self.folder / GRADER_FOLDER).exists():
            return None
        from recommender.learning.grader import Grader

        try:
            return Grader.load(self.folder / GRADER_FOLDER)
        except IndexLoadError as exc:
            log.warning("grader at %s not used: %s", self.folder / GRADER_FOLDER, exc)
            return None

    def open(self, sessions: sessionmaker[Session], progress: bool = False) -> SyncReport:
        """Load the saved index (a damaged one is rebuilt) and bring it in step with the database."""
        self.sessions = sessions
        self._claim_folder()
        # Changes committed from here on are replayed after the sync (replaying one twice is harmless).
        self.applied_seq = self._latest_change(sessions)
        with self.lock.writing():
            try:
                self.matcher = Matcher(self._load_side("result"), self._load_side("need"), self._load_grader())
            except (IndexLoadError, OSError, ValueError, KeyError) as exc:
                log.warning("index at %s unusable (%s): rebuilding from the database", self.folder, exc)
                return self._rebuild(sessions, progress)
            report = SyncReport({}, {})
            for kind in ROWS:
                up, gone = self._sync_side(sessions, kind, progress)  # type: ignore[arg-type]
                report.upserted[kind], report.deleted[kind] = up, gone
            if report.changed or not (self.folder / MATCHER_MANIFEST).exists():
                self.version += 1
                if self.saves:
                    self._save()
            self.in_sync = True
            return report

    def _sync_side(self, sessions: sessionmaker[Session], kind: Kind, progress: bool) -> tuple[int, int]:
        index = self.side(kind)
        row_type = ROWS[kind]
        with sessions() as session:
            stored = dict(session.execute(select(row_type.id, row_type.content_hash)).all())
        indexed = {rid: record_hash(rec, kind) for rid, rec in index.records.items()}
        stale = [rid for rid, h in stored.items() if indexed.get(rid) != h]
        gone = [rid for rid in indexed if rid not in stored]
        if stale and len(stale) > len(index) // 2:
            # Mostly new (a first load, or a lost index): fit every signal on the whole side at once,
            # so the lexical vocabularies see all of it rather than the first batch.
            records: list[Record] = []
            for start in range(0, len(stored), SYNC_BATCH):
                records += self._fetch(sessions, kind, list(stored)[start:start + SYNC_BATCH])
            fresh = new_index(kind, self.settings)
            fresh.build(records)
            self._replace_side(kind, fresh)
            log.info("%s index rebuilt from the database: %d records", kind, len(records))
            return len(stale), len(gone)
        if gone:
            index.delete(gone)
        for start in range(0, len(stale), SYNC_BATCH):
            index.upsert(self._fetch(sessions, kind, stale[start:start + SYNC_BATCH]))
        if stale or gone:
            log.info("%s index re-synced: %d re-indexed, %d removed", kind, len(stale), len(gone))
        return len(stale), len(gone)

    @staticmethod
    def _fetch(sessions: sessionmaker[Session], kind: Kind, ids: Sequence[str]) -> list[Record]:
        row_type = ROWS[kind]
        with sessions() as session:
            rows = session.scalars(select(row_type).where(row_type.id.in_(list(ids)))).all()
            return [row_record(r, kind) for r in rows]

    def rebuild(self, sessions: sessionmaker[Session], progress: bool = False) -> SyncReport:
        """Index everything in the database from scratch (``techmatch reindex``)."""
        self.sessions = sessions
        self.applied_seq = self._latest_change(sessions)
        with self.lock.writing():
            return self._rebuild(sessions, progress)

    def _rebuild(self, sessions: sessionmaker[Session], progress: bool) -> SyncReport:
        report = SyncReport({}, {}, rebuilt=True)
        sides: dict[str, HybridIndex] = {}
        for kind in ROWS:
            row_type = ROWS[kind]
            with sessions() as session:
                rows = session.scalars(select(row_type).order_by(row_type.id)).all()
                records = [row_record(r, kind) for r in rows]  # type: ignore[arg-type]
            index = new_index(kind, self.settings)  # type: ignore[arg-type]
            if records:
                index.build(records)
            sides[kind] = index
            report.upserted[kind], report.deleted[kind] = len(records), 0
        self.matcher = Matcher(sides["result"], sides["need"], self._load_grader())
        self.version += 1
        if self.saves:
            self._save()
        self.in_sync = True
        return report

    # -- the change log --------------------------------------------------------------------------
    @staticmethod
    def _latest_change(sessions: sessionmaker[Session]) -> int:
        """The newest change-log number: asked before every search, so on a bare pooled connection."""
        bind = sessions.kw["bind"]
        with bind.connect() as conn:
            return int(conn.execute(_LATEST_CHANGE).scalar() or 0)

    @property
    def saves(self) -> bool:
        """Whether this process writes the index folder: not when another process holds its lock file."""
        return self._writer_lock is not False

    def _claim_folder(self) -> None:
        """Lock ``writer.lock`` for life if no other process has: the first process to start saves."""
        try:
            import fcntl
        except ImportError:  # not a POSIX system: a single process, which saves
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._writer_lock is None:
            self._writer_lock = open(self.folder / "writer.lock", "a+")  # noqa: SIM115 - held while alive
            try:
                fcntl.flock(self._writer_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._writer_lock.close()
                self._writer_lock = False

    def close(self) -> None:
        """Give up the index folder's lock file (a restarted app in this process may then save again)."""
        if self._writer_lock:
            self._writer_lock.close()
        self._writer_lock = None

    def catch_up(self, sessions: sessionmaker[Session] | None = None) -> int:
        """Replay changes committed since the last replay (by any process); returns how many records."""
        sessions = sessions or self.sessions
        if sessions is None or self._latest_change(sessions) <= self.applied_seq:
            return 0
        with self._replaying:
            with sessions() as session:
                changes = session.execute(
                    select(IndexChangeRow.seq, IndexChangeRow.kind, IndexChangeRow.record_id)
                    .where(IndexChangeRow.seq > self.applied_seq).order_by(IndexChangeRow.seq)
                ).all()
            if not changes:
                return 0
            replayed = 0
            for kind in ROWS:
                ids = list(dict.fromkeys(rid for _, k, rid in changes if k == kind))
                if not ids:
                    continue
                current = {r.id: r for start in range(0, len(ids), SYNC_BATCH)
                           for r in self._fetch(sessions, kind, ids[start:start + SYNC_BATCH])}  # type: ignore[arg-type]
                self.apply(kind, upserts=list(current.values()),  # type: ignore[arg-type]
                           deletes=[rid for rid in ids if rid not in current])
                replayed += len(ids)
            self.applied_seq = changes[-1][0]
            return replayed

    # -- writes -------------------------------------------------------------------------------
    def apply(self, kind: Kind, upserts: Iterable[Record] = (), deletes: Iterable[str] = ()) -> None:
        """Mirror a committed database change; on failure the index is marked out of sync, never half-saved."""
        upserts, deletes = list(upserts), list(deletes)
        with self.lock.writing():
            try:
                index = self.side(kind)
                if len(index) + len(upserts) <= REFIT_BELOW and (upserts or deletes):
                    merged = {rid: rec for rid, rec in index.records.items() if rid not in set(deletes)}
                    merged.update({r.id: r for r in upserts})
                    fresh = new_index(kind, self.settings)
                    if merged:
                        fresh.build(list(merged.values()))
                    self._replace_side(kind, fresh)
                    index = fresh
                else:
                    if deletes:
                        index.delete(deletes)
                    if upserts:
                        index.upsert(upserts)
                if len(index):
                    index.search(["预热"], 1, explain=False)  # rebuild lazy structures now, not in a reader
                self.version += 1
                if self.saves:
                    self._save()
            except Exception:
                self.in_sync = False
                log.exception("index update failed; it will be re-synced from the database")
                raise

    def _replace_side(self, kind: Kind, index: HybridIndex) -> None:
        if kind == "result":
            self.matcher.results = index
        else:
            self.matcher.needs = index

    def _save(self) -> None:
        """Write each non-empty side; an empty side's folder is removed (nothing to search)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        sides = []
        for kind in ROWS:
            index = self.side(kind)  # type: ignore[arg-type]
            target = self.folder / SIDES[kind]
            if len(index):
                index.save(target)
                sides.append(kind)
            elif target.exists():
                shutil.rmtree(target)
        manifest = self.folder / MATCHER_MANIFEST
        if "result" in sides:
            manifest.write_text(json.dumps({"sides": sides}), encoding="utf-8")
        elif manifest.exists():
            manifest.unlink()

    def counts(self) -> dict[str, Any]:
        return {f"{kind}s": len(self.side(kind)) for kind in ROWS}  # type: ignore[arg-type]
