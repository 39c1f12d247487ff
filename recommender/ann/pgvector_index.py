"""pgvector backend: one side's vectors in a table of the service's PostgreSQL database, searched with HNSW.

Every process (and machine) that opens the database sees the same vectors, so there is nothing to save,
replay or ship: a saved folder holds only a manifest naming the table. The service writes a record's
vector in the same transaction as the record (``write_rows`` / ``delete_rows`` on the request's
connection, see ``service.core.catalog``); the engine's own ``append`` afterwards is the same upsert and
changes nothing. Each vector's filter values (``recommender.filters.filter_values``) are columns beside
it, so a filtered search is one SQL query (``filters_pushdown``). A filtered search is exact (the index
scan is switched off for it): pgvector 0.6's HNSW filters after the graph walk and could return fewer than
k of a selective filter's results.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from recommender.ann.base import ANNIndex, IndexLoadError, VectorDatabaseError, write_manifest
from recommender.filters import FILTER_FIELDS, Metadata, ResultFilters

INSTALL_HINT = ("install it: 'CREATE EXTENSION vector;' as a superuser of that database, after installing the "
                "package (Debian/Ubuntu: apt-get install postgresql-16-pgvector; or pip install pgserver for a "
                "PostgreSQL 16 with pgvector)")
BATCH = 1000
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def shared_engine(url: str) -> Engine:
    """One connection pool per database URL in a process (every side and signal shares it)."""
    with _ENGINES_LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
        return _ENGINES[url]


def extension_version(engine: Engine) -> str | None:
    """The installed pgvector version, or None: tries to create the extension first (needs the privilege)."""
    with engine.connect() as conn:
        version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        if version is None and conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar():
            try:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                conn.commit()
            except SQLAlchemyError:
                conn.rollback()
            version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        return None if version is None else str(version)


def require_extension(engine: Engine) -> str:
    version = extension_version(engine)
    if version is None:
        raise VectorDatabaseError(f"the ann backend 'pgvector' needs the pgvector extension in the database "
                                  f"{engine.url.render_as_string(hide_password=True)}; {INSTALL_HINT}")
    return version


def _table(name: str, dim: int) -> Table:
    from pgvector.sqlalchemy import Vector

    return Table(name, MetaData(), Column("id", Text, primary_key=True), Column("embedding", Vector(dim)),
                 *(Column(f, Text) for f in FILTER_FIELDS), Column("trl", Integer))


class PgVectorIndex(ANNIndex):
    """Vectors in the PostgreSQL table ``table`` (HNSW over inner product), shared by every process."""

    backend = "pgvector"
    filters_pushdown = True
    shared = True

    def __init__(self, dim: int, model: str, url: str = "", table: str = "tm_vectors", m: int = 16,
                 ef_construction: int = 64, ef_search: int = 100) -> None:
        super().__init__(dim, model)
        if not url.startswith("postgresql"):
            raise VectorDatabaseError("the ann backend 'pgvector' needs a PostgreSQL database URL "
                                      "(TECHMATCH_DATABASE_URL=postgresql+psycopg://...)")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,50}", table):
            raise ValueError(f"pgvector table name must be lower-case letters, digits and underscores: '{table}'")
        self.url, self.table_name = url, table
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.engine = shared_engine(url)
        require_extension(self.engine)
        self.table = _table(table, dim)
        self._ensure()

    # -- the table ---------------------------------------------------------------------------------
    def _ensure(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": self.table_name})
            existing = conn.execute(text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(:t) AND attname = 'embedding'"), {"t": self.table_name}).scalar()
            if existing is not None and existing != f"vector({self.dim})":
                conn.execute(text(f'DROP TABLE "{self.table_name}"'))  # another model's vectors: rebuilt
                existing = None
            if existing is None:
                self.table.create(conn)
                self._create_indexes(conn)

    def _create_indexes(self, conn: Connection) -> None:
        name = self.table_name
        conn.execute(text(f'CREATE INDEX IF NOT EXISTS "{name}_hnsw" ON "{name}" USING hnsw '
                          f"(embedding vector_ip_ops) WITH (m = {int(self.m)}, "
                          f"ef_construction = {int(self.ef_construction)})"))
        for column in (*FILTER_FIELDS, "trl"):
            conn.execute(text(f'CREATE INDEX IF NOT EXISTS "{name}_{column}" ON "{name}" ("{column}")'))

    @staticmethod
    def _rows(ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None) -> list[dict[str, Any]]:
        rows = []
        for i, (doc_id, vector) in enumerate(zip(ids, np.asarray(vectors, dtype=np.float32))):
            values = dict(metadata[i]) if metadata is not None else {}
            trl = values.get("trl")
            rows.append({"id": str(doc_id), "embedding": vector,
                         **{f: values.get(f) for f in FILTER_FIELDS},
                         "trl": trl if isinstance(trl, int) and not isinstance(trl, bool) else None})
        return rows

    def write_rows(self, conn: Connection, ids: Sequence[str], vectors: np.ndarray,
                   metadata: Metadata | None = None) -> None:
        """Insert or replace these vectors on ``conn`` (the caller's transaction: the service's write)."""
        rows = self._rows(ids, vectors, metadata)
        for start in range(0, len(rows), BATCH):
            stmt = insert(self.table).values(rows[start:start + BATCH])
            changed = {c: stmt.excluded[c] for c in ("embedding", *FILTER_FIELDS, "trl")}
            distinct = self.table.c.embedding.is_distinct_from(stmt.excluded.embedding)
            for c in (*FILTER_FIELDS, "trl"):
                distinct = distinct | self.table.c[c].is_distinct_from(stmt.excluded[c])
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changed, where=distinct))

    def delete_rows(self, conn: Connection, ids: Sequence[str]) -> int:
        """Remove these ids on ``conn`` (the caller's transaction)."""
        removed = 0
        ids = [str(i) for i in ids]
        for start in range(0, len(ids), BATCH):
            removed += conn.execute(delete(self.table).where(self.table.c.id.in_(ids[start:start + BATCH]))).rowcount
        return removed

    # -- ANNIndex ----------------------------------------------------------------------------------
    def index(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        """Replace the table's contents: loaded without the HNSW index, which is then built once (faster)."""
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP INDEX IF EXISTS "{self.table_name}_hnsw"'))
            conn.execute(text(f'TRUNCATE "{self.table_name}"'))
            self.write_rows(conn, ids, vectors, metadata)
            self._create_indexes(conn)

    def append(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        with self.engine.begin() as conn:
            self.write_rows(conn, ids, vectors, metadata)

    def delete(self, ids: Sequence[str]) -> int:
        with self.engine.begin() as conn:
            return self.delete_rows(conn, ids)

    def search(
        self, queries: np.ndarray, k: int, filters: ResultFilters | None = None
    ) -> list[list[tuple[str, float]]]:
        queries = np.asarray(queries, dtype=np.float32)
        if k <= 0 or not len(queries):
            return [[] for _ in range(len(queries))]
        t = self.table
        conditions = []
        active = filters is not None and filters.active()
        if active:
            for name, value in filters.conditions().items():
                if name == "trl_min":
                    conditions.append(t.c.trl >= value)
                elif name == "trl_max":
                    conditions.append(t.c.trl <= value)
                else:
                    conditions.append(t.c[name] == value)
        out = []
        try:
            with self.engine.begin() as conn:
                conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(int(self.ef_search), min(k, 1000))}"))
                if active:  # exact: HNSW in pgvector 0.6 filters after the walk (see the module's docstring)
                    conn.execute(text("SET LOCAL enable_indexscan = off"))
                for q in queries:
                    distance = t.c.embedding.max_inner_product(q)  # <#>: the negative inner product
                    rows = conn.execute(select(t.c.id, distance).where(*conditions).order_by(distance).limit(k))
                    out.append([(doc_id, -float(d)) for doc_id, d in rows])
        except SQLAlchemyError as exc:
            raise VectorDatabaseError(f"pgvector search failed: {exc.__class__.__name__}: {exc}") from None
        return out

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self.engine.connect() as conn:
            found = dict(conn.execute(select(self.table.c.id, self.table.c.embedding)
                                      .where(self.table.c.id.in_(list(ids)))).all())
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(missing[0])
        return np.stack([np.asarray(found[i], dtype=np.float32) for i in ids])

    def present(self, ids: Sequence[str]) -> list[str]:
        if not ids:
            return []
        with self.engine.connect() as conn:
            found = set(conn.scalars(select(self.table.c.id).where(self.table.c.id.in_(list(ids)))))
        return [i for i in ids if i in found]

    def __contains__(self, doc_id: str) -> bool:
        return bool(self.present([doc_id]))

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(self.table)) or 0)

    @property
    def ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(select(self.table.c.id)))

    def save(self, folder: Path) -> None:
        """Only a manifest: the vectors are in the database already."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_manifest(folder, {"kind": "ann", "backend": self.backend, "model": self.model, "dim": self.dim,
                                "table": self.table_name, "m": self.m, "ef_construction": self.ef_construction,
                                "ef_search": self.ef_search}, [])

    @classmethod
    def load(cls, folder: Path, info: dict[str, Any], url: str = "", **options: Any) -> PgVectorIndex:
        """Reconnect to the table the manifest names, in the database the settings give (``url``)."""
        if not url:
            raise IndexLoadError(f"{folder}: a pgvector index needs the database URL (TECHMATCH_DATABASE_URL)")
        return cls(int(info["dim"]), info["model"], url, str(info.get("table", options.get("table", "tm_vectors"))),
                   int(options.get("m", info.get("m", 16))),
                   int(options.get("ef_construction", info.get("ef_construction", 64))),
                   int(options.get("ef_search", info.get("ef_search", 100))))
