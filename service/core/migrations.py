"""Bring a database's tables to the newest schema (Alembic revisions in ``service/migrations``).

Called by ``make_engine`` before anything reads or writes, so a new column reaches an existing SQLite file or
PostgreSQL database on the next start. A database from before the migrations existed (the tables, but no
``alembic_version``) holds the initial revision's schema and is marked as such before upgrading. On
PostgreSQL an advisory lock keeps two processes starting at once from migrating side by side.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
BASELINE = "0001"  # the schema the service had before it had migrations
MIGRATION_LOCK = 7_261_002  # any constant: the PostgreSQL advisory lock held while migrating


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade to ``revision`` (default: the newest); returns the revision the database was at before."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        before = MigrationContext.configure(conn).get_current_revision()
        config = alembic_config(conn)
        if before is None and inspect(conn).has_table("needs"):
            command.stamp(config, BASELINE)  # made by create_all before migrations: it is the baseline schema
            before = BASELINE
        command.upgrade(config, revision)
    return before
