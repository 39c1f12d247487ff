"""Moving a deployment's database to another one (``techmatch db migrate --to``): SQLite to PostgreSQL.

Every table of the service's schema is copied row for row (accounts and their password hashes, API keys,
sign-in sessions, needs, results, enterprises, funds, decisions, feedback, judgements, jobs, the audit log,
...), parents before children, in one transaction on the target: it is all there or nothing is. The
target must be a database at this schema (it is migrated first) holding no data yet. Integer ids keep
their values, and PostgreSQL's sequences are moved past them so new rows do not collide. The change log
is copied too, so its numbers keep growing; nothing else reads the old database afterwards.

Copying the tables from the models' metadata (not a list kept here) means a table added by a later
migration moves with the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, Integer, func, insert, select, text

from service.core.models import Base

SEEDED = {"security_epoch"}  # rows the migrations themselves insert: replaced by the source's
BATCH = 1000


class TargetNotEmpty(ValueError):
    """The target database already holds data: a migration would mix two deployments."""


@dataclass
class TransferReport:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied

    def summary(self) -> str:
        shown = ", ".join(f"{name} {count}" for name, count in self.rows.items() if count)
        return f"{sum(self.rows.values())} rows ({shown or 'no data'})"


def copy_database(source: Engine, target: Engine, progress: Callable[[str, int], None] | None = None
                  ) -> TransferReport:
    """Copy every table of the schema from ``source`` to ``target`` (both already at the newest schema)."""
    tables = Base.metadata.sorted_tables  # parents first (foreign keys)
    report = TransferReport()
    with target.begin() as dst:
        used = {t.name: dst.scalar(select(func.count()).select_from(t)) for t in tables if t.name not in SEEDED}
        if any(used.values()):
            busy = ", ".join(f"{name} ({count} rows)" for name, count in used.items() if count)
            raise TargetNotEmpty(f"the target database already holds data: {busy}; migrate into an empty database")
        for table in tables:
            if table.name in SEEDED:
                dst.execute(table.delete())
            copied = 0
            with source.connect() as src:
                rows = src.execute(select(table)).mappings()
                while chunk := rows.fetchmany(BATCH):
                    dst.execute(insert(table), [dict(r) for r in chunk])
                    copied += len(chunk)
                    if progress is not None:
                        progress(table.name, copied)
            report.rows[table.name] = copied
        if dst.dialect.name == "postgresql":
            for table in tables:
                for column in table.primary_key.columns:
                    if isinstance(column.type, Integer) and column.autoincrement in (True, "auto"):
                        dst.execute(text(
                            f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                            f'COALESCE((SELECT max("{column.name}") FROM "{table.name}"), 0) + 1, false)'),
                            {"t": table.name, "c": column.name})
    return report
