"""The pgvector backend: dense vectors in a table of a PostgreSQL database, searched with an HNSW index.

One table per side (``<prefix>_result``, ``<prefix>_need``): the id, the vector (``vector(dim)``), the
filter values (field, institution, IP status, TRL: filters are SQL conditions) and ``source_hash``, the
hash of what the vector was computed from, so a caller can tell a stale vector from a current one without
re-embedding. The table's comment names the embedding model: vectors of another model are dropped.

Scores are inner products (``vector_ip_ops``, ``<#>``) of L2-normalised vectors, i.e. cosines, as FAISS
gives. An unfiltered search walks the HNSW graph with ``hnsw.ef_search`` at least the depth asked (pgvector
returns at most ef_search rows, and ef_search is at most 1,000: a deeper search is exact). A filtered search
is exact: pgvector 0.6 filters *after* the graph walk, so a selective filter would return fewer than k rows;
with the filter columns indexed (B-tree) PostgreSQL scans only the accepted rows.

``managed``: the table is written by the caller, in its own transactions (``write_rows`` and
``delete_rows`` on its connection: the service writes a record and its vector in one commit), and this
object's ``index``, ``append`` and ``delete`` do nothing. Unmanaged (the command line), they write.
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
from recommender.settings import PGVECTOR_BUILD_MEMORY, POSTGRES_SIZE

INSTALL_HINT = ("install it on the database server (Debian/Ubuntu: apt-get install postgresql-16-pgvector, with "
                "your server's major version), then run CREATE EXTENSION vector; in that database as a superuser "
                "(or set TECHMATCH_ANN_BACKEND=flat to keep the vectors in FAISS)")
BATCH = 1000  # rows per INSERT statement
MAX_EF_SEARCH = 1000  # pgvector's limit: an HNSW walk returns at most ef_search rows, so deeper searches are exact
MIN_PGVECTOR = (0, 5)  # HNSW indexes arrived in pgvector 0.5
BUILD_MEMORY = re.compile(POSTGRES_SIZE)  # checked here too: it goes into SET LOCAL, which binds no parameter
_ENGINES: dict[str, Engine] = {}
_ENSURED: set[tuple[str, str, int, str]] = set()
_LOCK = threading.Lock()


def shared_engine(url: str) -> Engine:
    """One connection pool per database URL in a process (every side shares it)."""
    with _LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = create_engine(url, pool_size=4, max_overflow=12, pool_pre_ping=True)
        return _ENGINES[url]


def release(url: str) -> None:
    """Close the pool of this database URL (a service that stops; tests that open many databases)."""
    with _LOCK:
        engine = _ENGINES.pop(url, None)
        _ENSURED.difference_update({key for key in _ENSURED if key[0] == url})
    if engine is not None:
        engine.dispose()


def extension_version(engine: Engine, create: bool = True) -> str | None:
    """The pgvector version installed in the database, or None; with ``create``, installs the extension
    first if the server has it and the user may (``CREATE EXTENSION`` needs a superuser or the owner)."""
    query = text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    with engine.connect() as conn:
        version = conn.execute(query).scalar()
        if version is None and create and conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar():
            try:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('techmatch pgvector'))"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                conn.commit()
            except SQLAlchemyError:
                conn.rollback()
            version = conn.execute(query).scalar()
        return None if version is None else str(version)


def missing_extension(engine: Engine) -> str | None:
    """Why this database cannot hold the vectors (one line, with what to do), or None if it can."""
    where = engine.url.render_as_string(hide_password=True)
    version = extension_version(engine)
    if version is None:
        return f"the database {where} has no pgvector extension (the ann backend 'pgvector' needs it): {INSTALL_HINT}"
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers < MIN_PGVECTOR:
        return f"the database {where} has pgvector {version}; HNSW needs 0.5 or newer: ALTER EXTENSION vector UPDATE;"
    return None


def _table(name: str, dim: int) -> Table:
    from pgvector.sqlalchemy import Vector

    return Table(name, MetaData(), Column("id", Text, primary_key=True), Column("embedding", Vector(dim)),
                 Column("source_hash", Text), *(Column(f, Text) for f in FILTER_FIELDS), Column("trl", Integer))


class PgVectorIndex(ANNIndex):
    """Vectors in the PostgreSQL table ``table`` (HNSW over inner product), one copy for every process."""

    backend = "pgvector"
    filters_pushdown = True
    shared = True

    def __init__(self, dim: int, model: str, url: str = "", table: str = "tm_vectors", m: int = 16,
                 ef_construction: int = 64, ef_search: int = 100, managed: bool = False,
                 build_memory: str = PGVECTOR_BUILD_MEMORY) -> None:
        super().__init__(dim, model)
        if not url.startswith("postgresql"):
            raise VectorDatabaseError("the ann backend 'pgvector' needs a PostgreSQL database URL "
                                      "(TECHMATCH_PGVECTOR_URL, or the service's TECHMATCH_DATABASE_URL)")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,50}", table):
            raise ValueError(f"pgvector table name must be lower-case letters, digits and underscores: '{table}'")
        if not BUILD_MEMORY.fullmatch(build_memory):
            raise ValueError(f"pgvector build memory must be a PostgreSQL size such as 512MB or 2GB: '{build_memory}'")
        self.build_memory = build_memory
        self.url, self.table_name, self.managed = url, table, managed
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.engine = shared_engine(url)
        self.table = _table(table, dim)
        try:
            self._ensure()
        except SQLAlchemyError as exc:
            raise VectorDatabaseError(f"cannot open the pgvector table '{table}': {str(exc).splitlines()[0]}") from None

    # -- the table ---------------------------------------------------------------------------------
    def _ensure(self) -> None:
        """Create the table and its indexes if missing (once per process); another model's vectors go."""
        key = (self.url, self.table_name, self.dim, self.model)
        if key in _ENSURED:
            return
        problem = missing_extension(self.engine)
        if problem:
            raise VectorDatabaseError(problem)
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": self.table_name})
            found = conn.execute(text(
                "SELECT format_type(atttypid, atttypmod), obj_description(attrelid, 'pg_class') FROM pg_attribute "
                "WHERE attrelid = to_regclass(:t) AND attname = 'embedding'"), {"t": self.table_name}).first()
            if found is not None and found[0] != f"vector({self.dim})":
                conn.execute(text(f'DROP TABLE "{self.table_name}"'))  # another dimension: another model
                found = None
            if found is None:
                self.table.create(conn)
                self.create_indexes(conn)
            elif found[1] != self.model:
                conn.execute(text(f'TRUNCATE "{self.table_name}"'))  # another model's vectors are no use
            if found is None or found[1] != self.model:
                conn.execute(text(f'COMMENT ON TABLE "{self.table_name}" IS ' + _literal(self.model)))
        _ENSURED.add(key)

    def create_indexes(self, conn: Connection) -> None:
        """The HNSW index and one B-tree per filter column (idempotent). The build runs with
        ``maintenance_work_mem`` = ``build_memory``: pgvector builds the graph far faster while it fits there
        (800,000 x 384-d, m 16: in 2 GB, 279 s); past it, it goes on on disk, several times slower."""
        name = self.table_name
        conn.execute(text(f"SET LOCAL maintenance_work_mem = '{self.build_memory}'"))
        conn.execute(text(f'CREATE INDEX IF NOT EXISTS "{name}_hnsw" ON "{name}" USING hnsw '
                          f"(embedding vector_ip_ops) WITH (m = {self.m}, ef_construction = {self.ef_construction})"))
        for column in (*FILTER_FIELDS, "trl"):
            conn.execute(text(f'CREATE INDEX IF NOT EXISTS "{name}_{column}" ON "{name}" ("{column}")'))

    def drop_graph(self, conn: Connection) -> None:
        """Drop the HNSW index before a bulk load into an empty table (built once afterwards: faster)."""
        conn.execute(text(f'DROP INDEX IF EXISTS "{self.table_name}_hnsw"'))

    @staticmethod
    def _rows(ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None,
              hashes: Sequence[str | None] | None) -> list[dict[str, Any]]:
        rows = []
        for i, (doc_id, vector) in enumerate(zip(ids, np.asarray(vectors, dtype=np.float32))):
            values = dict(metadata[i]) if metadata is not None else {}
            trl = values.get("trl")
            rows.append({"id": str(doc_id), "embedding": vector, "source_hash": hashes[i] if hashes else None,
                         **{f: None if values.get(f) is None else str(values[f]) for f in FILTER_FIELDS},
                         "trl": trl if isinstance(trl, int) and not isinstance(trl, bool) else None})
        return sorted(rows, key=lambda r: r["id"])  # one lock order for concurrent writers of the same ids

    def write_rows(self, conn: Connection, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None,
                   hashes: Sequence[str | None] | None = None) -> None:
        """Insert or replace these vectors on ``conn``, in the caller's transaction."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(ids) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index dimension {self.dim}")
        rows = self._rows(ids, vectors, metadata, hashes)
        columns = ("embedding", "source_hash", *FILTER_FIELDS, "trl")
        for start in range(0, len(rows), BATCH):
            stmt = insert(self.table).values(rows[start:start + BATCH])
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={c: stmt.excluded[c] for c in columns}))

    def delete_rows(self, conn: Connection, ids: Sequence[str]) -> int:
        """Remove these ids on ``conn``, in the caller's transaction; returns how many were there."""
        removed = 0
        ids = sorted(str(i) for i in ids)
        for start in range(0, len(ids), BATCH):
            removed += conn.execute(delete(self.table).where(self.table.c.id.in_(ids[start:start + BATCH]))).rowcount
        return removed

    def hashes(self, conn: Connection) -> dict[str, str | None]:
        """Every stored id with its ``source_hash`` (what a caller compares with its records)."""
        return dict(conn.execute(select(self.table.c.id, self.table.c.source_hash)).all())

    # -- ANNIndex ----------------------------------------------------------------------------------
    def index(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        """Replace the table's contents (loaded without the HNSW index, which is then built once)."""
        if self.managed:
            return
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1) if len(ids) else vectors
        if len(ids) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index dimension {self.dim}")
        with self.engine.begin() as conn:
            self.drop_graph(conn)
            conn.execute(text(f'TRUNCATE "{self.table_name}"'))
            self.write_rows(conn, ids, vectors, metadata)
            self.create_indexes(conn)

    def append(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        if self.managed or not len(ids):
            return
        with self.engine.begin() as conn:
            self.write_rows(conn, ids, vectors, metadata)

    def delete(self, ids: Sequence[str]) -> int:
        if self.managed or not ids:
            return 0
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
        for name, value in (filters.conditions().items() if active else ()):
            if name == "trl_min":
                conditions.append(t.c.trl >= value)
            elif name == "trl_max":
                conditions.append(t.c.trl <= value)
            else:
                conditions.append(t.c[name] == value)
        out = []
        try:
            with self.engine.begin() as conn:
                conn.execute(text(f"SET LOCAL hnsw.ef_search = {min(max(self.ef_search, k), MAX_EF_SEARCH)}"))
                if active or k > MAX_EF_SEARCH:  # exact (among the accepted rows): see the module's docstring
                    conn.execute(text("SET LOCAL enable_indexscan = off"))
                for q in queries:
                    distance = t.c.embedding.max_inner_product(q)  # <#>: the negative inner product
                    rows = conn.execute(select(t.c.id, distance).where(*conditions).order_by(distance).limit(k))
                    out.append([(doc_id, -float(d)) for doc_id, d in rows])
        except SQLAlchemyError as exc:
            raise VectorDatabaseError(f"pgvector search failed: {str(exc).splitlines()[0]}") from None
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
                                "table": self.table_name, "m": self.m, "ef_construction": self.ef_construction}, [])

    @classmethod
    def load(cls, folder: Path, info: dict[str, Any], url: str = "", **options: Any) -> PgVectorIndex:
        """Reconnect to the table the manifest names, in the database the settings give (``url``)."""
        if not url:
            raise IndexLoadError(f"{folder}: a pgvector index needs the database URL (TECHMATCH_PGVECTOR_URL)")
        return cls(int(info["dim"]), info["model"], url, str(options.get("table", info.get("table", "tm_vectors"))),
                   int(options.get("m", info.get("m", 16))),
                   int(options.get("ef_construction", info.get("ef_construction", 64))),
                   int(options.get("ef_search", 100)), bool(options.get("managed", False)),
                   str(options.get("build_memory", PGVECTOR_BUILD_MEMORY)))


def _literal(value: str) -> str:
    """A SQL string literal (COMMENT ON takes no bound parameter)."""
    return "'" + value.replace("'", "''") + "'"
