"""The engine's index kept in step with the database: incremental on every write, re-synced at startup.

The database is the source of truth. Each record's content hash is stored with it; at startup the saved
index's records are hashed the same way, and every id that is missing, stale or deleted is re-indexed
(the embedding cache makes this cheap), so a crash between a database commit and an index save never
leaves the two disagreeing for longer than a restart.

While running, every write also appends to a change log in the database, and each process replays the
log before it searches (``catch_up``: one small query when nothing changed). So several worker processes
each hold an engine of their own and still never answer from an index behind an acknowledged write. One
of them, the holder of a lock file in the index folder, saves the folder: in the service in the
background, at most every few seconds or N changes and on shutdown (``service.core.saver``), so a write
costs its commit and the in-memory change. A search does not replay this process's own writes that are
still in flight (not yet acknowledged): those are applied by the writing request, and a search that
waited for them would wait behind a save.

On PostgreSQL with pgvector the dense vectors are not in the folder at all: they are written in the
transaction of their record (``service.core.vectors``) and every process searches that one table, so a
replay changes only the in-process signals (BM25, TF-IDF) and the records they rank.

Everything about the index itself (its folder, its lock, how a change is applied) is the engine's
(``recommender.engine``); this module only decides what to apply, from the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recommender.ann.base import IndexLoadError
from recommender.engine import Engine
from recommender.matcher import Matcher
from recommender.records import Kind, Record
from recommender.settings import PipelineSettings
from service.core.models import IndexChangeRow
from service.core.rows import ROWS, record_hash, row_record
from service.core.saver import FolderSaver
from service.core.vectors import VectorStore

log = logging.getLogger("techmatch.service")
_LATEST_CHANGE = select(func.max(IndexChangeRow.seq))
SYNC_BATCH = 2000


@dataclass
class SyncReport:
    """What a startup sync or rebuild changed, per side."""

    upserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    rebuilt: bool = False
    vectors: dict[str, tuple[int, int]] = field(default_factory=dict)  # pgvector: (written, removed) per side

    @property
    def changed(self) -> bool:
        return self.rebuilt or any(self.upserted.values()) or any(self.deleted.values())

    def summary(self) -> str:
        parts = [f"{kind}s: +{self.upserted.get(kind, 0)} -{self.deleted.get(kind, 0)}" for kind in ROWS]
        parts += [f"{kind} vectors in the database: +{w} -{r}" for kind, (w, r) in self.vectors.items() if w or r]
        return ("rebuilt; " if self.rebuilt else "synced; ") + ", ".join(parts)


class IndexSync:
    """Opens the engine on the index folder and keeps it in step with the database's records."""

    def __init__(
        self, folder: Path, settings: PipelineSettings, batch_queries: bool = True, parallel_batches: int | None = None,
        save_interval: float | None = None, save_every: int = 1000,
    ) -> None:
        """``save_interval`` None: save the folder after every change (the CLI); a number: in the background."""
        self.folder = Path(folder)
        self.settings = settings = settings.for_folder(self.folder)
        self._options = {"batch_queries": batch_queries, "parallel_batches": parallel_batches}
        self.engine = Engine(Matcher.empty(settings), settings, self.folder, **self._options)
        self.in_sync = False
        self.sessions: sessionmaker[Session] | None = None
        self.applied_seq = 0  # the change log is replayed up to here
        self._replaying = threading.Lock()
        self._writer_lock: Any = None  # None: not claimed (a CLI process); False: another process holds it
        self._save_interval, self._save_every = save_interval, save_every
        self.saver: FolderSaver | None = None
        self._in_flight: set[int] = set()  # change-log numbers this process committed and has not replayed
        self._in_flight_lock = threading.Lock()
        # pgvector in the service's database: vectors written with their records (see ``service.core.vectors``)
        self.vectors = VectorStore(settings) if VectorStore.wanted(settings) else None

    # -- startup ------------------------------------------------------------------------------
    def open(self, sessions: sessionmaker[Session]) -> SyncReport:
        """Load the saved index (a damaged one is rebuilt) and bring it in step with the database."""
        self.sessions = sessions
        self._claim_folder()
        # Changes committed from here on are replayed after the sync (replaying one twice is harmless).
        self.applied_seq = self._latest_change(sessions)
        vectors = self._repair_vectors(sessions)
        try:
            matcher = Matcher.load(self.folder, self.settings, missing_ok=True, strict_grader=False)
        except (IndexLoadError, OSError, ValueError, KeyError) as exc:
            log.warning("index at %s unusable (%s): rebuilding from the database", self.folder, exc)
            return self._rebuild(sessions, vectors)
        if self._other_backend(matcher):
            log.warning("index at %s keeps its vectors in another backend than %s: rebuilding from the database",
                        self.folder, self.settings.ann_backend)
            return self._rebuild(sessions, vectors)
        self.engine.matcher = matcher  # nothing searches yet: the app serves once this returns
        self._grader_mode()
        report = SyncReport(vectors=vectors)
        for kind in ROWS:
            report.upserted[kind], report.deleted[kind] = self._sync_side(sessions, kind)  # type: ignore[arg-type]
        if report.changed or not (self.folder / "matcher.json").exists():
            self._save()
        if self._save_interval is not None:  # the service: its first write should cost what the others do
            self.engine.prepare_writes()
        self.in_sync = True
        return report

    def _other_backend(self, matcher: Matcher) -> bool:
        """Whether a saved side's dense vectors are in pgvector and the settings say otherwise, or the reverse
        (a service moved to PostgreSQL+pgvector, or back)."""
        wanted = self.settings.ann_backend == "pgvector"
        for kind in ROWS:
            side = matcher.side(kind)  # type: ignore[arg-type]
            dense = side.signals.get("dense") if side is not None else None
            ann = getattr(dense, "ann", None)
            if ann is not None and (ann.backend == "pgvector") != wanted:
                return True
        return False

    def _repair_vectors(self, sessions: sessionmaker[Session]) -> dict[str, tuple[int, int]]:
        """pgvector: re-embed what the vector tables lack or hold stale (see ``VectorStore.repair``)."""
        if self.vectors is None:
            return {}
        return {kind: self.vectors.repair(sessions, kind) for kind in ROWS}  # type: ignore[misc]

    def _sync_side(self, sessions: sessionmaker[Session], kind: Kind) -> tuple[int, int]:
        row_type = ROWS[kind]
        with sessions() as session:
            stored = dict(session.execute(select(row_type.id, row_type.content_hash)).all())
        indexed = {rid: record_hash(rec, kind) for rid, rec in self.engine.records(kind).items()}
        stale = [rid for rid, h in stored.items() if indexed.get(rid) != h]
        gone = [rid for rid in indexed if rid not in stored]
        if stale and len(stale) > len(indexed) // 2:
            # Mostly new (a first load, or a lost index): fit every signal on the whole side at once,
            # so the lexical vocabularies see all of it rather than the first batch.
            self.engine.replace(kind, self._fetch_all(sessions, kind, list(stored)))
            log.info("%s index rebuilt from the database: %d records", kind, len(stored))
            return len(stale), len(gone)
        if gone:
            self.engine.apply(kind, deletes=gone)
        for start in range(0, len(stale), SYNC_BATCH):
            self.engine.apply(kind, self._fetch(sessions, kind, stale[start:start + SYNC_BATCH]))
        if stale or gone:
            log.info("%s index re-synced: %d re-indexed, %d removed", kind, len(stale), len(gone))
        return len(stale), len(gone)

    def _fetch_all(self, sessions: sessionmaker[Session], kind: Kind, ids: Sequence[str]) -> list[Record]:
        return [r for start in range(0, len(ids), SYNC_BATCH)
                for r in self._fetch(sessions, kind, ids[start:start + SYNC_BATCH])]

    @staticmethod
    def _fetch(sessions: sessionmaker[Session], kind: Kind, ids: Sequence[str]) -> list[Record]:
        if not ids:
            return []
        row_type = ROWS[kind]
        with sessions() as session:
            rows = session.scalars(select(row_type).where(row_type.id.in_(list(ids))).order_by(row_type.id)).all()
            return [row_record(r, kind) for r in rows]

    def _grader_mode(self) -> None:
        """A grader with a cross-encoder grades online with its plain twin unless the settings ask for it
        (TECHMATCH_SERVE_CROSS_ENCODER): tens of milliseconds a pair would break the latency target."""
        grader = self.engine.matcher.grader
        if grader is not None and grader.cross_encoder is not None:
            grader.use_cross_encoder = self.settings.serve_cross_encoder

    def rebuild(self, sessions: sessionmaker[Session]) -> SyncReport:
        """Index everything in the database from scratch (``techmatch reindex``)."""
        self.sessions = sessions
        self.applied_seq = self._latest_change(sessions)
        return self._rebuild(sessions, self._repair_vectors(sessions))

    def _rebuild(self, sessions: sessionmaker[Session], vectors: dict[str, tuple[int, int]]) -> SyncReport:
        report = SyncReport(rebuilt=True, vectors=vectors)
        self.engine.matcher = Matcher.empty(self.settings)
        self.engine.reload_grader()
        self._grader_mode()
        for kind in ROWS:
            row_type = ROWS[kind]
            with sessions() as session:
                ids = list(session.scalars(select(row_type.id).order_by(row_type.id)))
            self.engine.replace(kind, self._fetch_all(sessions, kind, ids))  # type: ignore[arg-type]
            report.upserted[kind], report.deleted[kind] = len(ids), 0
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
        if self.saver is not None:
            self.saver.close()  # saves what is pending
            self.saver = None
        if self._writer_lock:
            self._writer_lock.close()
        self._writer_lock = None
        if self.vectors is not None:
            self.vectors.close()

    def writing(self, seqs: Sequence[int]) -> None:
        """This process committed (or is committing) these change-log numbers and will replay them itself."""
        with self._in_flight_lock:
            self._in_flight.update(seqs)

    def forget(self, seqs: Sequence[int]) -> None:
        """These numbers were not committed after all."""
        with self._in_flight_lock:
            self._in_flight.difference_update(seqs)

    def _only_own_in_flight(self, sessions: sessionmaker[Session]) -> bool:
        """Whether every change past the replayed one is this process's own unacknowledged write."""
        with self._in_flight_lock:
            if not self._in_flight:
                return False
        bind = sessions.kw["bind"]
        with bind.connect() as conn:
            newer = conn.execute(select(IndexChangeRow.seq).where(IndexChangeRow.seq > self.applied_seq)).scalars()
            with self._in_flight_lock:
                return all(seq in self._in_flight for seq in newer)

    def catch_up(self, sessions: sessionmaker[Session] | None = None, search: bool = False) -> int:
        """Replay changes committed since the last replay (by any process); returns how many records.

        ``search``: a search asks; it leaves this process's own writes in flight to the requests making them."""
        sessions = sessions or self.sessions
        if sessions is None or self._latest_change(sessions) <= self.applied_seq:
            return 0
        if search and self._only_own_in_flight(sessions):
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
            try:
                for kind in ROWS:
                    ids = list(dict.fromkeys(rid for _, k, rid in changes if k == kind))
                    if not ids:
                        continue
                    current = {r.id: r for r in self._fetch_all(sessions, kind, ids)}  # type: ignore[arg-type]
                    self.engine.apply(kind, upserts=list(current.values()),  # type: ignore[arg-type]
                                      deletes=[rid for rid in ids if rid not in current])
                    replayed += len(ids)
            except Exception:
                self.in_sync = False
                log.exception("index update failed; it will be re-synced from the database")
                raise
            self.applied_seq = changes[-1][0]
            with self._in_flight_lock:
                self._in_flight.difference_update(seq for seq, _, _ in changes)
            self._changed(replayed)
            return replayed

    def _save(self) -> None:
        if self.saves:
            self.engine.save()

    def _changed(self, count: int) -> None:
        """Save after a change: now (a CLI process) or soon, in the background (the service)."""
        if not self.saves:
            return
        if self._save_interval is None:
            self.engine.save()
            return
        if self.saver is None:
            self.saver = FolderSaver(self.engine.save, self._save_interval, self._save_every)
        self.saver.changed(count)

    def flush(self) -> None:
        """Save now what the background saver has pending (tests, shutdown)."""
        if self.saver is not None:
            self.saver.flush()

    def counts(self) -> dict[str, Any]:
        return self.engine.counts()
