"""techmatch CLI commands for operators: ``backup DIR`` and ``restore DIR`` (service/ops/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from techmatch.commands.service import DbOpt, HomeOpt, service_settings


def backup(
    folder: Annotated[Path, typer.Argument(help="a new or empty folder to write the backup into")],
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Back up the service: a consistent copy of the database (SQLite online backup, or pg_dump), the index
    folder with its grader and a tuned encoder, and a manifest of SHA-256 checksums. Safe while serving."""
    from service.ops.backup import backup as run

    report = run(service_settings(db, home), folder)
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"backed up to {folder}: {report.summary()}")


def restore(
    folder: Annotated[Path, typer.Argument(help="a folder written by 'techmatch backup'")],
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Restore a backup into an empty data folder (and an empty database): every file's checksum is checked
    first, and a damaged backup is refused with nothing written. Then 'techmatch serve' on it."""
    from service.ops.backup import restore as run

    settings = service_settings(db, home)
    report = run(folder, settings)
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"restored {folder} into {settings.home} ({report.database}, {len(report.files)} files checked); "
               f"start it with 'techmatch serve --home {settings.home}'")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("backup")(backup)
    app.command("restore")(restore)
