"""techmatch CLI commands for the HTTP service: serve, reindex, keys, load-demo, feedback export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.errors import UserError

DEMO_SIZES = {"tiny": 300, "small": 2000, "full": 30000}  # tiny: tests and a quick look
DEMO_NEEDS = {"tiny": 60, "small": 300, "full": 2500}

keys_app = typer.Typer(help="API keys for the service (stored hashed; a key is printed once).", no_args_is_help=True)
feedback_app = typer.Typer(help="Broker feedback recorded through the service.", no_args_is_help=True)
db_app = typer.Typer(help="The service database's schema (Alembic migrations).", no_args_is_help=True)

DbOpt = Annotated[str | None, typer.Option("--db", help="database URL (default: TECHMATCH_DATABASE_URL or SQLite)")]
HomeOpt = Annotated[Path | None, typer.Option("--home", help="data folder (default: var/techmatch)")]


def service_settings(db: str | None = None, home: Path | None = None):
    """ServiceSettings from the environment, overridden by --db/--home."""
    from pydantic import ValidationError

    from service.core.config import ServiceSettings

    overrides: dict[str, object] = {}
    if db:
        overrides["database_url"] = db
    if home:
        overrides["home"] = home
    try:
        return ServiceSettings(**overrides)
    except ValidationError as exc:
        raise UserError(f"invalid service settings: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def _sessions(db: str | None, home: Path | None):
    from service.core.db import make_engine, make_sessions

    settings = service_settings(db, home)
    try:
        engine = make_engine(settings.resolved_database_url)
    except Exception as exc:  # driver errors: unreachable server, bad credentials
        raise UserError(f"cannot open the database: {str(exc).splitlines()[0]}") from None
    return settings, make_sessions(engine)


def _pipeline(settings, sessions):
    """The pipeline settings of the service on this database: pgvector where it can (``service.core.vectors``)."""
    from service.core.vectors import choose_backend

    return choose_backend(settings.pipeline, sessions.kw["bind"])


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite database URL (None for a server database or an in-memory one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Path(parsed.database) if parsed.drivername.startswith("sqlite") and parsed.database not in (
        None, "", ":memory:") else None


def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    db: DbOpt = None, home: HomeOpt = None,
    log_level: Annotated[str, typer.Option("--log-level", help="critical, error, warning, info, debug or trace")
                         ] = "info",
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help=(
        "worker processes; each holds its own index, kept in step with the others through the database's "
        "change log (more throughput when one process is bound by its interpreter)"))] = 1,
) -> None:
    """Start the HTTP API (docs at /docs) on the embedded default or the database given."""
    import logging
    import os

    # One OpenMP/BLAS thread per call: a batch's encoder and FAISS already run beside its lexical signals
    # in a thread of their own, and threads splitting one short query mostly wait (measured at 8 clients
    # on 2 cores: 44 -> 32 ms of CPU per request). Set before the runtimes load; yours win.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # Interactive matching encodes each request's need on the spot: in int8 that costs 4-5 ms instead of
    # 10-18, which is what holds p95 under 150 ms at 8 clients on 2 cores (eval/benchmarks/SERVICE.md).
    # The hybrid ranks as well with it (bdci2019 nDCG@10 0.2159 against 0.2149); e5 alone and the triage
    # lose a little, so batch commands (eval, shortlist) keep float32. TECHMATCH_E5_RUNTIME=torch overrides.
    os.environ.setdefault("TECHMATCH_E5_RUNTIME", "torch-int8")

    import uvicorn
    from uvicorn.config import LOG_LEVELS

    from service.main import create_app

    log_level = log_level.lower()
    if log_level not in LOG_LEVELS:
        raise UserError(f"unknown --log-level '{log_level}': use {', '.join(LOG_LEVELS)}")
    logging.basicConfig(level=LOG_LEVELS[log_level], format="%(levelname)s %(name)s: %(message)s")
    # Open the database (and bring its tables up to date) here, so a wrong URL or a damaged file is one line
    # from the command instead of a traceback from the server's startup.
    settings, sessions = _sessions(db, home)
    _pipeline(settings, sessions)  # pgvector chosen but missing: one line, before any worker starts
    sessions.kw["bind"].dispose()
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False)
        return
    # The tables were created above, once, not in a race of workers.
    # Workers are new processes that read their settings from the environment.
    os.environ["TECHMATCH_DATABASE_URL"] = settings.resolved_database_url
    os.environ["TECHMATCH_HOME"] = str(Path(settings.home).resolve())
    uvicorn.run("service.main:create_app", factory=True, workers=workers, host=host, port=port,
                log_level=log_level, access_log=False)


def reindex(db: DbOpt = None, home: HomeOpt = None) -> None:
    """Rebuild the search index from the database (the database is the source of truth)."""
    import time

    from service.core.sync import IndexSync

    settings, sessions = _sessions(db, home)
    start = time.perf_counter()
    report = IndexSync(settings.resolved_index_dir, _pipeline(settings, sessions)).rebuild(sessions)
    typer.echo(f"reindexed {report.upserted['result']} results and {report.upserted['need']} needs "
               f"in {time.perf_counter() - start:.1f}s -> {settings.resolved_index_dir}")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="broker or enterprise")],
    enterprise: Annotated[str | None, typer.Option("--enterprise", help="enterprise id (enterprise keys)")] = None,
    label: Annotated[str | None, typer.Option("--label", help="who holds the key")] = None,
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Issue an API key and print it (only its hash is stored: keep it safe)."""
    from service.core.security import create_api_key

    _, sessions = _sessions(db, home)
    with sessions() as session:
        token = create_api_key(session, role, enterprise, label)
    typer.echo(token)


@keys_app.command("list")
def keys_list(db: DbOpt = None, home: HomeOpt = None) -> None:
    """List the keys (id, role, enterprise, label, created, revoked); the keys themselves are never stored."""
    from service.core.security import list_api_keys

    _, sessions = _sessions(db, home)
    with sessions() as session:
        rows = list_api_keys(session)
    for row in rows:
        revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-"
        typer.echo(f"{row.id}\t{row.role}\t{row.enterprise or '-'}\t{row.label or '-'}\t"
                   f"{row.created_at.isoformat(timespec='seconds')}\trevoked: {revoked}")
    if not rows:
        typer.echo("no keys yet: create one with 'techmatch keys create --role broker'")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (the part after 'tm_', as 'keys list' shows)")],
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Revoke a key: it answers 401 from now on (within a minute in a running service)."""
    from service.core.security import revoke_api_key

    _, sessions = _sessions(db, home)
    with sessions() as session:
        row = revoke_api_key(session, key_id.strip())
        typer.echo(f"revoked key {row.id} ({row.role}{', ' + row.enterprise if row.enterprise else ''})")


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None, home: HomeOpt = None) -> None:
    """Upgrade the database's tables to this techmatch's schema (every start does it too)."""
    from service.core.migrations import current_revision, head_revision

    settings, sessions = _sessions(db, home)  # opening the database runs the migrations
    typer.echo(f"database at revision {current_revision(sessions.kw['bind'])} (newest: {head_revision()})")


@db_app.command("current")
def db_current(db: DbOpt = None, home: HomeOpt = None) -> None:
    """Show the database's schema revision without changing anything."""
    from sqlalchemy import create_engine

    from service.core.db import describe
    from service.core.migrations import current_revision, head_revision

    settings = service_settings(db, home)
    try:
        revision = current_revision(create_engine(settings.resolved_database_url))
    except Exception as exc:
        raise UserError(f"cannot open the database: {str(exc).splitlines()[0]}") from None
    typer.echo(f"{describe(settings.resolved_database_url)}: revision {revision or 'none (new or pre-migration)'}"
               f" (newest: {head_revision()})")


@db_app.command("migrate")
def db_migrate(
    to: Annotated[str, typer.Option("--to", help="the new database: postgresql+psycopg://user:password@host/db")],
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Move this deployment's data (accounts, keys, needs, results, decisions, feedback, judgements, ...) to
    another database, empty, then index it there: with pgvector the vectors go into that database too.
    Stop the service first; afterwards serve with TECHMATCH_DATABASE_URL set to the new database."""
    import time

    from sqlalchemy.engine import make_url

    from service.core.db import describe, make_engine, make_sessions
    from service.core.sync import IndexSync
    from service.core.transfer import TargetNotEmpty, copy_database
    from service.core.vectors import choose_backend

    start = time.perf_counter()
    settings, sessions = _sessions(db, home)
    source = sessions.kw["bind"]
    try:
        target_url = make_url(to)
    except Exception:
        raise UserError(f"--to is not a database URL: '{to}' (e.g. postgresql+psycopg://user@host/techmatch)") from None
    if target_url.get_backend_name() not in ("postgresql", "sqlite"):
        raise UserError(f"--to must be a postgresql+psycopg:// (or sqlite:///) URL, got '{describe(to)}'")
    if target_url.render_as_string(hide_password=False) == source.url.render_as_string(hide_password=False):
        raise UserError("--to names the database being moved: give the new one")
    try:
        target = make_engine(to)
    except Exception as exc:  # driver errors: unreachable server, bad credentials, no such database
        raise UserError(f"cannot open the target database: {str(exc).splitlines()[0]}") from None
    try:
        report = copy_database(source, target)
    except TargetNotEmpty as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"copied {report.summary()} -> {describe(to)}")
    pipeline = choose_backend(settings.pipeline, target)
    indexed = IndexSync(settings.resolved_index_dir, pipeline).rebuild(make_sessions(target))
    where = "pgvector, in that database" if pipeline.ann_backend == "pgvector" else f"{pipeline.ann_backend} (FAISS)"
    typer.echo(f"indexed {indexed.upserted['result']} results and {indexed.upserted['need']} needs; dense vectors in "
               f"{where} ({time.perf_counter() - start:.1f}s). Serve it with TECHMATCH_DATABASE_URL={describe(to)}")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Option("--out", help="file to write: .jsonl (for learning), .csv or .xlsx")],
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Write every feedback row as {need_id, result_id, outcome, note, created_at}: JSON Lines, CSV or Excel."""
    from service.core.workbench import write_feedback
    from techmatch.checks import output_file

    settings, sessions = _sessions(db, home)
    output_file(out, [_sqlite_file(settings.resolved_database_url)])
    with sessions() as session:
        count = write_feedback(session, out)
    typer.echo(f"wrote {count} feedback row(s) -> {out}")


def load_demo(
    size: Annotated[str, typer.Option("--size", help="tiny (300 results), small (2,000) or full (30,000)")] = "small",
    seed: Annotated[int, typer.Option("--seed")] = 7,
    db: DbOpt = None, home: HomeOpt = None,
) -> None:
    """Load the synthetic demo world (results, needs, enterprises, funds) into the service's database and index."""
    import time

    from data.synthetic import generate_world
    from recommender.records import parse_record
    from service.core.partners import upsert_enterprises, upsert_funds
    from service.core.sync import IndexSync

    if size not in DEMO_SIZES:
        raise UserError(f"unknown --size '{size}': use {', '.join(DEMO_SIZES)}")
    start = time.perf_counter()
    settings, sessions = _sessions(db, home)
    world = generate_world(seed=seed, n_results=DEMO_SIZES[size], n_needs=DEMO_NEEDS[size])
    sync = IndexSync(settings.resolved_index_dir, _pipeline(settings, sessions))
    with sessions() as session:
        upsert_enterprises(session, world.enterprises)
        upsert_funds(session, world.funds)
        for kind, rows in (("result", world.results), ("need", world.needs)):
            records = [parse_record(raw, kind, "demo", f"record {i}")[0] for i, raw in enumerate(rows, 1)]
            _store_rows(session, kind, [r for r in records if r is not None])
    report = sync.open(sessions)  # embeds what the index lacks (with a progress bar), then saves
    typer.echo(f"loaded {len(world.results)} results, {len(world.needs)} needs, {len(world.enterprises)} enterprises,"
               f" {len(world.funds)} funds in {time.perf_counter() - start:.1f}s ({report.summary()})")


def _store_rows(session, kind: str, records: list) -> None:
    """Upsert records into the database only; the index catches up in one batch afterwards."""
    from tqdm import tqdm

    from service.core.catalog import store_rows

    for start in tqdm(range(0, len(records), 1000), desc=f"storing {kind}s", unit="batch"):
        store_rows(session, kind, records[start:start + 1000])


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("serve")(serve)
    app.command("reindex")(reindex)
    app.command("load-demo")(load_demo)
    app.add_typer(keys_app, name="keys")
    app.add_typer(feedback_app, name="feedback")
    app.add_typer(db_app, name="db")
