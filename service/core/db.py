"""Engine and sessions for SQLite (embedded default) or PostgreSQL (when an operator gives a URL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.core.migrations import upgrade_schema


def make_engine(url: str) -> Engine:
    """An engine on a database at the newest schema (migrated if older); SQLite gets WAL and foreign-thread access
    for the thread pool."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:  # durable, concurrent readers alongside one writer
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    upgrade_schema(engine)
    return engine


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def database_ok(engine: Engine) -> bool:
    """Readiness: can we run a query right now?"""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def describe(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


# Any constant: the PostgreSQL advisory lock that orders the writers of records (and their vectors).
WRITERS_LOCK = 7_261_001


def lock_writers(session: Session) -> None:
    """Take the writers' lock for the rest of the session's transaction (PostgreSQL; SQLite already has one
    writer at a time). On the session's connection, not through ``session.execute``: no autoflush, so no row
    of this transaction is locked before it (writers take their locks in one order: no deadlock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITERS_LOCK})
