"""``techmatch backup DIR`` and ``techmatch restore DIR``: a consistent copy of the database and of the data
folder's artefacts (the index folder with its grader, a tuned encoder), with a manifest of SHA-256 checksums.

* The database is copied consistently while the service runs: SQLite by its online backup API (a snapshot
  of one transaction), PostgreSQL by ``pg_dump`` (custom format; restored with ``pg_restore``).
* The index folder is copied file by file and checked against its own manifests; a copy caught in the
  middle of a background save is taken again. The database is the truth: a service started on a restore
  re-syncs the index from it by content hash, so an index a few writes older than the database is fine.
* ``restore`` checks every file's checksum before writing anything and refuses a damaged or edited backup
  (one line naming the file, exit 2), and restores only into an empty data folder and an empty database.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL, make_url

from embeddings.manifest import MANIFEST as FOLDER_MANIFEST
from embeddings.manifest import file_sha256
from recommender.errors import UserError
from service.core.config import ServiceSettings

KIND = "techmatch-backup"
FORMAT = 1
MANIFEST = "backup.json"
SQLITE_FILE = "techmatch.db"
PG_FILE = "database.pgdump"
INDEX = "index"
MODELS = "models"
SKIPPED = {"writer.lock"}  # the live index folder's lock file: never part of a copy
TUNED_PREFIX = "e5-tuned:"


@dataclass
class BackupReport:
    folder: Path
    database: str
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        size = sum((self.folder / name).stat().st_size for name in self.files)
        return f"{len(self.files)} files, {size / 1e6:.1f} MB, database: {self.database}"


# -- the database ------------------------------------------------------------------------------------
def sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if parsed.database in (None, "", ":memory:"):
        raise UserError("an in-memory SQLite database has nothing to back up or restore")
    return Path(parsed.database)


def sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent snapshot even while the service writes."""
    if not source.is_file():
        raise UserError(f"no database at {source}: nothing to back up (is --home right?)")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    except sqlite3.Error as exc:
        raise UserError(f"cannot back up the database {source}: {exc}") from None
    finally:
        src.close()
        dst.close()


def _pg_env(url: URL) -> dict[str, str]:
    """libpq's variables for the URL (the password stays out of the command line others can read)."""
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value not in (None, ""):
            env[var] = str(value)
    return env


def _pg_tool(name: str) -> str:
    """PostgreSQL's client program: from the folder TECHMATCH_PG_BIN if set (only there), else the one bundled
    with the ``pgserver`` package when it is installed (PostgreSQL 16, the single-machine server this project
    documents; a client older than its server refuses to dump it), else the one on PATH."""
    chosen = os.environ.get("TECHMATCH_PG_BIN")
    if chosen is not None:
        found = str(Path(chosen) / name) if os.access(Path(chosen) / name, os.X_OK) else None
    else:
        try:
            import pgserver  # optional: the dev extra

            bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
            found = str(bundled) if os.access(bundled, os.X_OK) else shutil.which(name)
        except ImportError:
            found = shutil.which(name)
    if found is None:
        raise UserError(f"{name} not found: a PostgreSQL database is backed up and restored with PostgreSQL's "
                        f"client tools (apt-get install postgresql-client, of the server's major version or newer)")
    return found


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"{what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")


def pg_dump(url: str, target: Path) -> None:
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)],
         _pg_env(make_url(url)), "pg_dump")


def pg_restore(url: str, source: Path) -> None:
    _run([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--dbname",
          make_url(url).database or "", str(source)], _pg_env(make_url(url)), "pg_restore")


def database_is_empty(url: str) -> bool:
    engine = create_engine(url)
    try:
        return not inspect(engine).get_table_names()
    except Exception as exc:  # driver errors: unreachable server, bad credentials
        raise UserError(f"cannot open the database: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


# -- files -----------------------------------------------------------------------------------------
def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in SKIPPED)


def folder_consistent(folder: Path) -> bool:
    """Every ``manifest.json`` under ``folder`` matches the files it lists (no save was caught halfway)."""
    for manifest in folder.rglob(FOLDER_MANIFEST):
        try:
            listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError):
            return False
        for name, checksum in listed.items():
            file = manifest.parent / name
            if not file.is_file() or file_sha256(file) != checksum:
                return False
    return True


def copy_folder(source: Path, target: Path, attempts: int = 5) -> bool:
    """Copy a live folder; taken again while a background save changes it under the copy."""
    for attempt in range(attempts):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for file in _files(source):
            destination = target / file.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(file, destination)
            except FileNotFoundError:  # replaced by a save as we copied
                break
        else:
            if folder_consistent(target):
                return True
        time.sleep(0.5 * (attempt + 1))
    return False


def tuned_encoder(settings: ServiceSettings) -> Path | None:
    model = settings.pipeline.model
    return Path(model[len(TUNED_PREFIX):]).expanduser().resolve() if model.startswith(TUNED_PREFIX) else None


# -- backup ------------------------------------------------------------------------------------------
def backup(settings: ServiceSettings, out: Path) -> BackupReport:
    """Write the backup into ``out`` (new or empty): the database, the index folder, a tuned encoder."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} is not an empty folder: a backup goes into a new or empty folder")
    url = settings.resolved_database_url
    source = sqlite_file(url)
    if source is not None and not source.is_file():
        raise UserError(f"no database at {source}: nothing to back up (is --home right?)")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _backup(settings, out, url, source)
    except BaseException:  # leave no half-written backup behind
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for path in out.iterdir():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        raise


def _backup(settings: ServiceSettings, out: Path, url: str, source: Path | None) -> BackupReport:
    report = BackupReport(out, "sqlite" if source else "postgresql")
    index = Path(settings.resolved_index_dir)
    # The index before the database: the database is then the newer of the two, and a start catches up.
    if index.is_dir() and any(index.iterdir()):
        if not copy_folder(index, out / INDEX):
            raise UserError(f"the index folder {index} kept changing while it was copied: try again, or stop "
                            f"the service for the backup")
    else:
        report.notes.append(f"no index folder at {index}: a restore rebuilds it from the database")
    if source is not None:
        sqlite_copy(source, out / SQLITE_FILE)
    else:
        pg_dump(url, out / PG_FILE)
    encoder = tuned_encoder(settings)
    if encoder is not None:
        if not encoder.is_dir():
            raise UserError(f"the tuned encoder {encoder} (TECHMATCH_MODEL) is missing")
        shutil.copytree(encoder, out / MODELS / encoder.name)
    report.files = {str(p.relative_to(out)): file_sha256(p) for p in _files(out)}
    manifest = {"kind": KIND, "format_version": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(),
                "database": report.database, "model": settings.pipeline.model,
                "tuned_encoder": f"{MODELS}/{encoder.name}" if encoder else None, "files": report.files}
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return report


# -- restore -----------------------------------------------------------------------------------------
def verify(folder: Path) -> dict[str, Any]:
    """The backup's manifest, once every file it lists is present and matches its checksum."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: not a techmatch backup ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: damaged backup manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise UserError(f"{path}: not a techmatch backup manifest")
    if manifest.get("format_version") != FORMAT:
        raise UserError(f"{path}: backup format {manifest.get('format_version')} is not supported (this techmatch "
                        f"reads version {FORMAT})")
    for name, checksum in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            raise UserError(f"{folder}: damaged backup ({name} is missing)")
        if file_sha256(file) != checksum:
            raise UserError(f"{folder}: damaged backup ({name} does not match its SHA-256 checksum): nothing "
                            f"was restored")
    return manifest


def restore(source: Path, settings: ServiceSettings) -> BackupReport:
    """Restore a verified backup into the data folder and database of ``settings`` (both must be empty)."""
    source = Path(source)
    manifest = verify(source)
    home = Path(settings.home)
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise UserError(f"{home} is not an empty folder: restore into a new or empty data folder (--home)")
    url = settings.resolved_database_url
    target_db = sqlite_file(url)
    kind = manifest["database"]
    index = Path(settings.resolved_index_dir)
    if index.exists() and any(index.iterdir()):
        raise UserError(f"{index} is not an empty folder: restore into a new or empty index folder")
    if target_db is not None and target_db.exists():
        raise UserError(f"{target_db} exists: restore into a new database file")
    if (kind == "sqlite") != (target_db is not None):
        raise UserError(f"the backup holds a {kind} database; restore it into the same kind (--db)")
    if target_db is None and not database_is_empty(url):
        raise UserError("the target PostgreSQL database has tables already: restore into an empty database")
    home.mkdir(parents=True, exist_ok=True)
    report = BackupReport(source, kind, dict(manifest["files"]))
    if (source / INDEX).is_dir():
        shutil.copytree(source / INDEX, index, dirs_exist_ok=True)
    if manifest.get("tuned_encoder"):
        encoder = (home / manifest["tuned_encoder"]).resolve()
        shutil.copytree(source / manifest["tuned_encoder"], encoder)
        spec = f"{TUNED_PREFIX}{encoder}"
        for side in index.glob(f"*/{FOLDER_MANIFEST}"):  # the index names its model by path: the new one
            info = json.loads(side.read_text(encoding="utf-8"))
            if info.get("model") == manifest["model"]:
                side.write_text(json.dumps(dict(info, model=spec), ensure_ascii=False, indent=2), encoding="utf-8")
        report.notes.append(f"serve with TECHMATCH_MODEL={spec}")
    if target_db is not None:
        target_db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / SQLITE_FILE, target_db)
    else:
        pg_restore(url, source / PG_FILE)
    return report
