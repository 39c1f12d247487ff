"""Where the service's dense vectors live: the pgvector table of its PostgreSQL database when it can.

On a PostgreSQL URL whose database has (or can create) the pgvector extension, and unless the operator
chose a backend (TECHMATCH_ANN_BACKEND), the dense signal's vectors go to a table of the service's own
database, written in the same transaction as their record (``write_in_transaction``). On SQLite, or a
PostgreSQL without the extension, the in-process FAISS index (saved to the folder) stays the default.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine as DbEngine
from sqlalchemy.orm import Session

from recommender.ann.base import VectorDatabaseError
from recommender.errors import UserError
from recommender.filters import filter_values
from recommender.hybrid import HybridIndex
from recommender.records import Record
from recommender.settings import PipelineSettings


class MissingExtensionError(UserError):
    """TECHMATCH_ANN_BACKEND=pgvector on a database without the extension (one line that says how to install it)."""


def choose_backend(pipeline: PipelineSettings, db: DbEngine) -> PipelineSettings:
    """The pipeline settings the service runs with: pgvector on PostgreSQL with the extension (by itself, or
    by setting), pointed at the service's own database."""
    from recommender.ann.pgvector_index import extension_version, require_extension

    postgres = db.dialect.name == "postgresql"
    chosen = "ann_backend" in pipeline.model_fields_set
    if pipeline.ann_backend == "pgvector":
        if not postgres:
            raise MissingExtensionError("TECHMATCH_ANN_BACKEND=pgvector needs a PostgreSQL database "
                                        "(TECHMATCH_DATABASE_URL=postgresql+psycopg://...)")
        try:
            require_extension(db)
        except VectorDatabaseError as exc:
            raise MissingExtensionError(str(exc)) from None
    elif chosen or not postgres or extension_version(db) is None:
        return pipeline
    url = db.url.render_as_string(hide_password=False)
    return pipeline.model_copy(update={"ann_backend": "pgvector", "pgvector_url": pipeline.pgvector_url or url})


def write_in_transaction(session: Session, side: HybridIndex | None, upserts: Sequence[Record] = (),
                         deletes: Sequence[str] = ()) -> None:
    """Write (or delete) these records' vectors on the session's connection, before it commits, where the
    side keeps them in the database (pgvector); a no-op for in-process indexes (the engine applies them)."""
    if side is None:
        return
    for signal in side.signals.values():
        ann = getattr(signal, "ann", None)
        if ann is None or not hasattr(ann, "write_rows"):
            continue
        conn = session.connection()
        if deletes:
            ann.delete_rows(conn, list(deletes))
        if upserts:
            docs = [r.as_passage() for r in upserts]
            ann.write_rows(conn, [r.id for r in upserts], signal.passage_vectors(docs),
                           [filter_values(r) for r in upserts])
