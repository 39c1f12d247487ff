"""techmatch CLI commands for triage and push: demo-world, shortlist, push."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from recommender.errors import UserError
from techmatch.commands.learning import (
    CrossEncoderOption,
    EpochsOption,
    LayersOption,
    WorkOption,
    cross_encoder_config,
    work_folder,
)

ModelOpt = Annotated[str | None, typer.Option("--model", help="e5-small (default), st:<name|folder>, static:<folder>")]
SignalsOpt = Annotated[str | None, typer.Option("--signals", help="signals when building, e.g. dense,bm25,char")]
FundsOpt = Annotated[Path | None, typer.Option("--funds", help="funds file (.jsonl/.csv/.xlsx): push to funds too")]
EnterprisesOpt = Annotated[
    Path | None, typer.Option("--enterprises", help="enterprises file: names for the needs' enterprise ids")
]


def demo_world(
    out: Annotated[Path, typer.Option("--out", help="folder to write the demo world into")],
    seed: Annotated[int, typer.Option("--seed", help="same seed, same world, byte for byte")] = 7,
    results: Annotated[int, typer.Option("--results", min=0, help="research results")] = 30000,
    needs: Annotated[int, typer.Option("--needs", min=0, help="enterprise technical needs")] = 2500,
    enterprises: Annotated[int, typer.Option("--enterprises", min=0, help="partner enterprises")] = 241,
    funds: Annotated[int, typer.Option("--funds", min=0, help="seed/angel funds")] = 204,
) -> None:
    """Write the seeded synthetic demo world (results, needs, enterprises, funds, qrels, transferable.txt)."""
    from data.synthetic import generate_world, write_world
    from techmatch.checks import output_folder

    output_folder(out, [])
    try:
        world = generate_world(seed, results, needs, enterprises, funds)
    except ValueError as exc:
        raise UserError(f"cannot generate this world: {exc}") from None
    paths = write_world(world, out)
    for kind, path in paths.items():
        typer.echo(f"{kind}\t{path}")
    typer.echo(f"{len(world.results)} results, {len(world.needs)} needs, {len(world.enterprises)} enterprises, "
               f"{len(world.funds)} funds, {len(world.transferable)} transferable -> {out}")


def _load_engine(index_dir: Path | None, results_path: Path, model: str | None, signals: str | None,
                 skip_invalid: bool):
    """The engine over the results: reused from --index (it must hold exactly these results) or built now."""
    from recommender.engine import Engine
    from recommender.records import load_records
    from techmatch.cli import settings_from

    records, report = load_records(results_path, "result", skip_invalid)
    if report.skipped:
        typer.echo(report.summary(), err=True)
    if index_dir is None:
        settings = settings_from(model, signals, None, None)
        start = time.perf_counter()
        engine = Engine.build(records, None, settings)
        typer.echo(f"indexed {len(records)} results in {time.perf_counter() - start:.1f}s", err=True)
        return engine
    engine = Engine.load(index_dir, settings_from(model, None, None, None) if model else None)
    wanted = {r.id for r in records}
    held = set(engine.records("result"))
    if wanted != held:
        missing = sorted(wanted - held)
        extra = sorted(held - wanted)
        detail = f"{len(missing)} result(s) of {results_path} are not in it (e.g. '{missing[0]}')" if missing else (
            f"it holds {len(extra)} result(s) not in {results_path} (e.g. '{extra[0]}')")
        raise UserError(f"index {index_dir} was not built from {results_path}: {detail}; "
                        f"rebuild it with 'techmatch index --results {results_path} --out {index_dir}' or drop --index")
    return engine


def _train_grader(engine, train_needs: Path, train_qrels: Path, skip_invalid: bool, cross_encoder=None,
                  work: Path | None = None):
    from recommender.learning.training import train_grader
    from recommender.records import load_records
    from recommender.trec import read_qrels

    needs, _ = load_records(train_needs, "need", skip_invalid)
    qrels = read_qrels(train_qrels)
    typer.echo(f"learning strengths from {sum(len(v) for v in qrels.values())} judgements of {len(qrels)} needs",
               err=True)
    # a TrainingDataError says what does not fit
    return train_grader(engine.matcher.results, needs, qrels, seed=0, cross_encoder=cross_encoder, work=work)


def shortlist_command(
    needs: Annotated[Path, typer.Option("--needs", help="enterprise needs (the market)")],
    results: Annotated[Path, typer.Option("--results", help="research results to triage")],
    top: Annotated[int, typer.Option("--top", min=1, help="how many results to shortlist")],
    out: Annotated[Path, typer.Option("--out", help="CSV to write (an .xlsx workbook is written beside it)")],
    train_needs: Annotated[Path | None, typer.Option("--train-needs", help="needs with judgements")] = None,
    train_qrels: Annotated[Path | None, typer.Option("--train-qrels", help="their judgements (TREC qrels)")] = None,
    funds: FundsOpt = None, enterprises: EnterprisesOpt = None,
    index_dir: Annotated[Path | None, typer.Option("--index", help="reuse an index of RESULTS from 'techmatch index'")] = None,  # noqa: E501
    xlsx: Annotated[bool, typer.Option("--xlsx/--no-xlsx", help="also write OUT with .xlsx (two sheets)")] = True,
    model: ModelOpt = None, signals: SignalsOpt = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="skip bad records and report them")] = False,
    cross_encoder: CrossEncoderOption = False,
    cross_encoder_epochs: EpochsOption = 3,
    cross_encoder_layers: LayersOption = 4,
    work: WorkOption = None,
) -> None:
    """Rank every result by transferability (market pull + readiness), keep the top K with whom to push it to.

    --cross-encoder (with --train-needs/--train-qrels) grades every need's candidates with the fine-tuned
    cross-encoder too: CPU minutes of training per fold, then tens of milliseconds a candidate."""
    from recommender.records import load_records
    from recommender.triage import load_enterprises, load_funds
    from recommender.triage.export import write_csv, write_xlsx

    if (train_needs is None) != (train_qrels is None):
        raise UserError("--train-needs and --train-qrels go together")
    if cross_encoder and train_needs is None:
        raise UserError("--cross-encoder learns from judgements: give --train-needs and --train-qrels too")
    work = work_folder(work) if cross_encoder else None
    if out.suffix.lower() != ".csv":
        raise UserError(f"--out must name a .csv file, got '{out}'")
    from techmatch.checks import output_file

    inputs = [needs, results, train_needs, train_qrels, funds, enterprises]
    output_file(out, inputs)
    if xlsx:
        output_file(out.with_suffix(".xlsx"), inputs, "--out (its .xlsx beside it)")
    need_records, report = load_records(needs, "need", skip_invalid)
    if report.skipped:
        typer.echo(report.summary(), err=True)
    fund_records = load_funds(funds) if funds else []
    enterprise_map = load_enterprises(enterprises) if enterprises else None
    engine = _load_engine(index_dir, results, model, signals, skip_invalid)
    if train_needs and train_qrels:
        config = cross_encoder_config(cross_encoder, cross_encoder_epochs, cross_encoder_layers, 0)
        grader = _train_grader(engine, train_needs, train_qrels, skip_invalid, config, work)
    else:  # an index folder may carry a grader installed by 'techmatch train': use what it learned
        grader = engine.grader
        if grader is not None:
            typer.echo(f"using the grader stored in {index_dir} for need-result strengths", err=True)
    start = time.perf_counter()
    entries = engine.shortlist(top, fund_records, enterprise_map, needs=need_records, grader=grader, progress=True)
    seconds = time.perf_counter() - start
    write_csv(entries, out)
    written = [str(out)]
    if xlsx:
        written.append(str(write_xlsx(entries, out.with_suffix(".xlsx"))))
    typer.echo(f"shortlisted {len(entries)} of {engine.count('result')} results for {len(need_records)} needs "
               f"in {seconds:.1f}s -> {', '.join(written)}")


def push_command(
    index_dir: Annotated[Path, typer.Option("--index", help="index folder built with --results and --needs")],
    result: Annotated[str | None, typer.Option("--result", help="a result id: which enterprises and funds")] = None,
    need: Annotated[str | None, typer.Option("--need", help="a need id: which results to send")] = None,
    funds: FundsOpt = None, enterprises: EnterprisesOpt = None,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="targets (or results) to list")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Push a result to enterprises (via their needs) and funds, or a need's best results to its enterprise."""
    from recommender.engine import Engine
    from recommender.triage import load_enterprises, load_funds

    if (result is None) == (need is None):
        raise UserError("give exactly one of --result or --need")
    fund_records = load_funds(funds) if funds else []
    enterprise_map = load_enterprises(enterprises) if enterprises else None
    engine = Engine.load(index_dir)
    if result is not None:
        targets = engine.push_result(result, fund_records, top, enterprise_map)
        record = engine.record("result", result)
        if as_json:
            typer.echo(json.dumps({"result": result, "targets": [t.to_dict() for t in targets]}, ensure_ascii=False))
            return
        rows = [(t.kind, t.id, t.name, f"{t.score:.3f}", t.reason) for t in targets]
        _table(f"{result}: {record.title}", ("to", "id", "name", "score", "reason"), rows)
        if not targets:
            typer.echo("no enterprise or fund fits this result")
        return
    assert need is not None
    matches = engine.push_need(need, top)
    record = engine.record("need", need)
    if as_json:
        typer.echo(json.dumps({"need": need, "results": [m.to_dict("result") for m in matches]}, ensure_ascii=False))
        return
    rows = [(str(m.rank), m.id, m.title, f"{m.score:.4f}", "、".join(m.shared_terms)) for m in matches]
    _table(f"{need}: {record.title}", ("#", "result", "title", "score", "shared key terms"), rows)


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("demo-world")(demo_world)
    app.command("shortlist")(shortlist_command)
    app.command("push")(push_command)
