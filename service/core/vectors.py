"""The service's dense vectors in its own PostgreSQL database (pgvector), one copy for every worker.

On a PostgreSQL database with the pgvector extension (or that can create it), unless the operator chose
another backend (TECHMATCH_ANN_BACKEND), the dense signal's vectors live in the tables
``tm_vectors_result`` and ``tm_vectors_need`` of the service's own database (``choose_backend``). The
service writes a record's vector in the transaction that writes the record (``VectorStore.write``: create,
update, delete, bulk upload), so the two never disagree and every worker process searches the same index
with no change log to replay for it. The in-process signals (BM25, character TF-IDF) and the records they
rank still follow the change log (``service.core.sync``): one indexed ``max(seq)`` query before a search.

At startup ``VectorStore.repair`` compares each stored record's content hash with the hash stored beside
its vector and re-embeds only what differs (records written by a command that embeds nothing, such as
``techmatch load-demo`` or ``techmatch db migrate``, or the vectors of another model).

Writers take one PostgreSQL advisory lock (``service.core.db.lock_writers``) before they lock any row, so
a repair and a request writing the same record are ordered, never interleaved: the vector stored is always
that of the record's committed content.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Engine as DbEngine
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from recommender.ann.pgvector_index import PgVectorIndex, missing_extension, release
from recommender.dense import DenseSignal
from recommender.errors import UserError
from recommender.filters import filter_values
from recommender.pipeline import SIGNALS
from recommender.records import Kind, Record
from recommender.settings import PipelineSettings
from service.core.db import describe, lock_writers
from service.core.rows import ROWS, record_hash, row_record

log = logging.getLogger("techmatch.service")
REPAIR_BATCH = 1000
REPAIR_LOCK = 7_261_003  # any constant: the advisory lock of one repairing process
BULK_LOAD = 2000  # an empty table given at least this many vectors builds its HNSW graph once, afterwards


class MissingExtensionError(UserError):
    """TECHMATCH_ANN_BACKEND=pgvector on a database that cannot hold vectors (one line: what to install)."""


def choose_backend(pipeline: PipelineSettings, db: DbEngine) -> PipelineSettings:
    """The pipeline settings the service runs with: pgvector in its own database when that is PostgreSQL with
    the extension (by itself, or because the settings say so), the settings as they are otherwise."""
    postgres = db.dialect.name == "postgresql"
    if pipeline.ann_backend == "pgvector":
        if not postgres:
            raise MissingExtensionError(
                f"TECHMATCH_ANN_BACKEND=pgvector keeps the vectors in the service's database, and "
                f"{describe(str(db.url))} is not PostgreSQL (set TECHMATCH_DATABASE_URL=postgresql+psycopg://...)")
        problem = missing_extension(db)
        if problem:
            raise MissingExtensionError(problem)
    elif "ann_backend" in pipeline.model_fields_set or not postgres:
        return pipeline
    else:
        problem = missing_extension(db)
        if problem:
            log.info("dense vectors stay in FAISS: %s", problem)
            return pipeline
    url = db.url.render_as_string(hide_password=False)
    return pipeline.model_copy(update={"ann_backend": "pgvector", "pgvector_url": url, "pgvector_managed": True})


class VectorStore:
    """The vector tables of the service's database, written in the transactions of their records."""

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self._signals: dict[str, DenseSignal] = {}

    @staticmethod
    def wanted(settings: PipelineSettings) -> bool:
        """Whether the service keeps these settings' vectors itself (pgvector, chosen by ``choose_backend``)."""
        return settings.ann_backend == "pgvector" and settings.pgvector_managed and "dense" in settings.signals

    def signal(self, kind: Kind) -> DenseSignal:
        """A dense signal of this side: its embedder computes the vectors, its table stores them."""
        if kind not in self._signals:
            signal = SIGNALS["dense"](self.settings, kind)
            assert isinstance(signal, DenseSignal)
            self._signals[kind] = signal
        return self._signals[kind]

    def _table(self, kind: Kind) -> PgVectorIndex:
        table = self.signal(kind).ann
        assert isinstance(table, PgVectorIndex)
        return table

    def embed(self, kind: Kind, records: Sequence[Record]) -> np.ndarray:
        return self.signal(kind).passage_vectors([r.as_passage() for r in records])

    def write(self, session: Session, kind: Kind, upserts: Sequence[Record] = (), deletes: Sequence[str] = (),
              vectors: np.ndarray | None = None) -> None:
        """Write these records' vectors (embedded first, before any lock) and delete those of ``deletes`` in
        the session's transaction; the caller commits them with the records."""
        if upserts and vectors is None:
            vectors = self.embed(kind, upserts)
        lock_writers(session)
        table, conn = self._table(kind), session.connection()
        if deletes:
            table.delete_rows(conn, list(deletes))
        if upserts:
            table.write_rows(conn, [r.id for r in upserts], vectors, [filter_values(r) for r in upserts],
                             [record_hash(r, kind) for r in upserts])

    def close(self) -> None:
        """Close the tables' connection pool (the service stops)."""
        release(self.settings.pgvector_url)
        self._signals.clear()

    def repair(self, sessions: sessionmaker[Session], kind: Kind) -> tuple[int, int]:
        """Bring the side's table in step with its stored records: (vectors written, vectors removed).

        One process repairs at a time (a session advisory lock): workers starting together embed once, the
        later ones find nothing left to do."""
        table = self._table(kind)
        with table.engine.connect() as guard:
            guard.execute(text("SELECT pg_advisory_lock(:key)"), {"key": REPAIR_LOCK})
            try:
                return self._repair(sessions, kind)
            finally:
                guard.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": REPAIR_LOCK})
                guard.commit()

    def _repair(self, sessions: sessionmaker[Session], kind: Kind) -> tuple[int, int]:
        row_type, table = ROWS[kind], self._table(kind)
        with sessions() as session:
            stored = dict(session.execute(select(row_type.id, row_type.content_hash)).all())
            held = table.hashes(session.connection())
        stale = sorted(rid for rid, h in stored.items() if held.get(rid) != h)
        gone = sorted(rid for rid in held if rid not in stored)
        if not stale and not gone:
            return 0, 0
        bulk = not held and len(stale) >= BULK_LOAD
        if bulk:
            with table.engine.begin() as conn:
                table.drop_graph(conn)
        written = 0
        try:
            for start in range(0, len(stale), REPAIR_BATCH):
                with sessions() as session:
                    rows = session.scalars(select(row_type).where(row_type.id.in_(stale[start:start + REPAIR_BATCH])))
                    found = [(row_record(row, kind), row.content_hash) for row in rows]
                if not found:
                    continue
                vectors = self.embed(kind, [r for r, _ in found])  # no lock held while embedding
                with sessions() as session:
                    lock_writers(session)  # from here no request changes these records until this commits
                    now = dict(session.execute(select(row_type.id, row_type.content_hash)
                                               .where(row_type.id.in_([r.id for r, _ in found]))).all())
                    keep = [i for i, (r, h) in enumerate(found) if now.get(r.id) == h]  # else rewritten since
                    self.write(session, kind, [found[i][0] for i in keep], vectors=vectors[keep])
                    session.commit()
                    written += len(keep)
            with sessions() as session:
                lock_writers(session)
                still = set(session.scalars(select(row_type.id).where(row_type.id.in_(gone)))) if gone else set()
                removed = table.delete_rows(session.connection(), [g for g in gone if g not in still])
                session.commit()
        finally:
            if bulk:
                with table.engine.begin() as conn:
                    table.create_indexes(conn)
        return written, removed

