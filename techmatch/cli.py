"""The ``techmatch`` command line (typer): index, match, eval and the broker's other commands.

Every expected failure (bad file, damaged index, unknown model or id) ends with a one-paragraph message
on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer >= 0.29 vendors click: its classes
from typer.core import TyperGroup

from recommender.errors import USER_ERRORS, UserError
from techmatch.commands.learning import (
    CrossEncoderOption,
    EpochsOption,
    LayersOption,
    WorkOption,
    cross_encoder_config,
    work_folder,
)


def one_line(message: str) -> str:
    """A message on one line: a multi-line one (a validation report, a driver error) joined with '; '."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


class Commands(TyperGroup):
    """The app's command group: the one place where failures become messages, for every command.

    An error the user caused (a bad file, an unknown id, a damaged index, an option out of range) ends as
    one line ``error: ...`` on stderr and exit code 2, never a traceback or a multi-line usage panel.
    Living in the group (not only in the console entry point) makes ``CliRunner`` see the same thing."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:  # 'techmatch keys': the group's help, as asked
            exc.show()
            sys.exit(exc.exit_code)
        except UsageError as exc:  # missing option, value out of range, unknown command
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            typer.echo(f"error: {one_line(exc.format_message())}{where}", err=True)
            sys.exit(exc.exit_code)
        except typer.TyperException as exc:  # a bad file path given to a click Path type, ...
            typer.echo(f"error: {one_line(exc.format_message())}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except USER_ERRORS as exc:
            typer.echo(f"error: {one_line(str(exc))}", err=True)
            sys.exit(2)
        except typer.Abort:  # Ctrl-D at a prompt
            typer.echo("aborted", err=True)
            sys.exit(1)
        if code == 130:  # typer turns Ctrl-C into exit code 130
            typer.echo("interrupted", err=True)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="techmatch", cls=Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Match enterprise technical needs with university research results (Chinese text).",
)


def fail(message: str) -> UserError:
    """An error to raise for a wrong use of a command; ``Commands.main`` prints it as one line."""
    return UserError(message)


def settings_from(model: str | None, signals: str | None, weights: str | None, backend: str | None):
    """PipelineSettings from the environment, overridden by any options given."""
    from recommender.settings import PipelineSettings

    overrides: dict[str, object] = {}
    if model:
        overrides["model"] = model
    if signals:
        overrides["signals"] = signals
    if weights:
        try:
            overrides["weights"] = {k: float(v) for k, v in (p.split("=") for p in weights.split(","))}
        except ValueError:
            raise fail(f"--weights must look like 'dense=1,bm25=0.5,char=1', got '{weights}'") from None
    if backend:
        overrides["ann_backend"] = backend
    from pydantic import ValidationError

    try:
        return PipelineSettings(**overrides)
    except ValidationError as exc:  # its first problem, readable: "signals: unknown signal(s) ['x']: ..."
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise fail(f"invalid settings: {where + ': ' if where else ''}{error['msg'].removeprefix('Value error, ')}"
                   ) from None


ModelOpt = Annotated[str | None, typer.Option("--model", help="e5-small (default), st:<name|folder>, static:<folder>, "
                                                         "e5-tuned:<folder>")]
SignalsOpt = Annotated[str | None, typer.Option("--signals", help="signals to fuse, e.g. dense,bm25,char")]
WeightsOpt = Annotated[str | None, typer.Option("--weights", help="RRF weights, e.g. dense=1,bm25=1,char=1")]
BackendOpt = Annotated[str | None, typer.Option(
    "--ann", "--backend", help="ANN backend: flat (exact), hnsw or ivf (FAISS), or milvus (TECHMATCH_MILVUS_URI)",
)]
SkipOpt = Annotated[bool, typer.Option("--skip-invalid", help="skip bad records and report them")]


def _load(path: Path, kind: str, skip_invalid: bool):
    from recommender.records import load_records

    records, report = load_records(path, kind, skip_invalid)  # type: ignore[arg-type]
    if report.skipped:
        typer.echo(report.summary(), err=True)
    return records


@app.command()
def index(
    results: Annotated[Path, typer.Option("--results", help="results file (.jsonl, .csv, .xlsx)")],
    out: Annotated[Path, typer.Option("--out", help="index folder to write")],
    needs: Annotated[Path | None, typer.Option("--needs", help="also index needs (for result -> needs)")] = None,
    model: ModelOpt = None, signals: SignalsOpt = None, weights: WeightsOpt = None, ann: BackendOpt = None,
    skip_invalid: SkipOpt = False,
) -> None:
    """Embed and index results (and optionally needs) into a folder."""
    import time

    from recommender.engine import Engine
    from techmatch.checks import output_folder

    output_folder(out, [results, needs])
    settings = settings_from(model, signals, weights, ann)
    settings = settings.for_folder(out)  # milvus without a URI: a Milvus Lite file inside the index folder
    result_records = _load(results, "result", skip_invalid)
    need_records = _load(needs, "need", skip_invalid) if needs else None
    start = time.perf_counter()
    Engine.build(result_records, need_records, settings).save(out)
    typer.echo(
        f"indexed {len(result_records)} results" + (f" and {len(need_records)} needs" if need_records else "")
        + f" with {settings.model} ({', '.join(settings.signals)}) in {time.perf_counter() - start:.1f}s -> {out}"
        + (f" (vectors in Milvus at {settings.milvus_uri})" if settings.ann_backend == "milvus" else "")
    )


def _print_matches(title: str, matches: list, kind: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("#", "id", "title", "score", "signal ranks", "shared key terms"):
        table.add_column(col, overflow="fold")
    if matches and matches[0].grade is not None:
        table.add_column("grade")
    folded = any(m.duplicates for m in matches)
    if folded:
        table.add_column("duplicates", overflow="fold")
    for m in matches:
        ranks = " ".join(f"{k}:{v.rank if v.rank is not None else '-'}" for k, v in m.signals.items())
        row = [str(m.rank), m.id, m.title, f"{m.score:.4f}", ranks, "、".join(m.shared_terms)]
        if m.grade is not None:
            row.append(f"{m.grade} ({m.grade_probability:.2f})")
        if folded:
            row.append(f"另有 {len(m.duplicates)} 条相似成果: {', '.join(m.duplicates)}" if m.duplicates else "")
        table.add_row(*row)
    Console().print(table)


@app.command()
def match(
    index_dir: Annotated[Path, typer.Option("--index", help="index folder from 'techmatch index'")],
    text: Annotated[str | None, typer.Option("--text", help="a need described in free text")] = None,
    needs: Annotated[Path | None, typer.Option("--needs", help="needs file: match each need")] = None,
    result: Annotated[str | None, typer.Option("--result", help="a result id: find the needs it answers")] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="matches per query")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON Lines instead of a table")] = False,
    model: ModelOpt = None, skip_invalid: SkipOpt = False,
    collapse: Annotated[bool | None, typer.Option(
        "--collapse-duplicates/--keep-duplicates",
        help="one row per duplicate group of results (default: TECHMATCH_COLLAPSE_DUPLICATES, on)")] = None,
) -> None:
    """Top-k results for a need (--text or --needs), or top-k needs for a result (--result)."""
    from recommender.engine import Engine
    from recommender.records import free_text_need

    chosen = [x for x in (text, needs, result) if x is not None]
    if len(chosen) != 1:
        raise fail("give exactly one of --text, --needs or --result")
    if text is not None and not text.strip():
        raise fail("--text is empty")
    settings = settings_from(model, None, None, None) if model else None
    engine = Engine.load(index_dir, settings)
    if result is not None:
        queries = [engine.record("result", result)]
        rankings = engine.needs_for(queries, top)
        kind = "need"
    else:
        queries = [free_text_need(text)] if text is not None else _load(needs, "need", skip_invalid)
        rankings = engine.results_for(queries, top, collapse=collapse)
        kind = "result"
    for query, matches in zip(queries, rankings):
        qid, qtitle = query.id, query.title
        if as_json:
            typer.echo(json.dumps({"query": qid, "matches": [m.to_dict(kind) for m in matches]}, ensure_ascii=False))
        else:
            _print_matches(f"{qid}: {qtitle}", matches, kind)


@app.command("eval")
def eval_command(
    needs: Annotated[Path, typer.Option("--needs", help="needs to evaluate")],
    results: Annotated[Path, typer.Option("--results", help="results to rank (all of them)")],
    qrels: Annotated[Path, typer.Option("--qrels", help="TREC qrels: need_id 0 result_id grade")],
    min_grade: Annotated[int, typer.Option("--min-grade", min=1, help="grade counted as relevant")] = 1,
    train_needs: Annotated[Path | None, typer.Option("--train-needs", help="needs to learn from")] = None,
    train_qrels: Annotated[Path | None, typer.Option("--train-qrels", help="judgements to learn from")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as one JSON object (last line)")] = False,
    per_query: Annotated[Path | None, typer.Option("--per-query", help="write each need's figures (CSV)")] = None,
    run_out: Annotated[Path | None, typer.Option("--run", help="save the ranking as a TREC run file")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="write PNG figures into this folder")] = None,
    model: ModelOpt = None, signals: SignalsOpt = None, weights: WeightsOpt = None, ann: BackendOpt = None,
    skip_invalid: SkipOpt = False,
    cross_encoder: CrossEncoderOption = False,
    cross_encoder_epochs: EpochsOption = 3,
    cross_encoder_layers: LayersOption = 4,
    work: WorkOption = None,
    collapse_duplicates: Annotated[bool, typer.Option(
        "--collapse-duplicates", help="count each duplicate group of results as one item")] = False,
) -> None:
    """Index RESULTS, rank them for every judged need and print nDCG, recall and MRR (the contract).

    With --train-needs/--train-qrels a re-ranker is learnt first; --cross-encoder adds the fine-tuned
    cross-encoder's probabilities to its features (CPU minutes per fold)."""
    from eval.runner import run_evaluation

    if (train_needs is None) != (train_qrels is None):
        raise fail("--train-needs and --train-qrels go together")
    if cross_encoder and train_needs is None:
        raise fail("--cross-encoder learns from judgements: give --train-needs and --train-qrels too")
    work = work_folder(work) if cross_encoder else None
    from techmatch.checks import output_file, output_folder

    inputs = [needs, results, qrels, train_needs, train_qrels]
    for path, option in ((run_out, "--run"), (per_query, "--per-query")):
        if path is not None:
            output_file(path, inputs, option)
    if plot is not None:
        output_folder(plot, inputs, "--plot")
    settings = settings_from(model, signals, weights, ann)
    figures = run_evaluation(
        needs_path=needs, results_path=results, qrels_path=qrels, min_grade=min_grade, settings=settings,
        train_needs_path=train_needs, train_qrels_path=train_qrels, per_query_path=per_query,
        run_path=run_out, plot_dir=plot, skip_invalid=skip_invalid,
        cross_encoder=cross_encoder_config(cross_encoder, cross_encoder_epochs, cross_encoder_layers, 0),
        work=work, collapse_duplicates=collapse_duplicates,
    )
    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False))
    else:
        for key, value in figures.items():
            typer.echo(f"{key:>16}  {value}")


def _register_commands() -> None:
    from techmatch.commands import register_all

    register_all(app)


_register_commands()


def main() -> None:
    """Console entry point (errors become messages in ``Commands.main``)."""
    app()


if __name__ == "__main__":
    main()
