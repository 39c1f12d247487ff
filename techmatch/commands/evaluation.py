"""techmatch CLI commands: evaluation (``techmatch compare``: are two systems really different?).

``techmatch eval --run F`` saves each system's ranking as a TREC run; ``compare`` scores several such runs on
the same judgements and tests every pair per metric (paired tests from ``eval.compare``), because a mean
that moves by 0.01 on 100 needs is often just query-set noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from recommender.errors import UserError

TESTS = ("student", "fisher")
T = TypeVar("T")


def _system_names(runs: list[Path], names: str | None) -> list[str]:
    """Names shown in the table: --names if given, else file stems (whole paths when stems clash)."""
    if names is not None:
        chosen = [n.strip() for n in names.split(",")]
        if len(chosen) != len(runs) or not all(chosen) or len(set(chosen)) != len(chosen):
            raise UserError(f"--names needs {len(runs)} distinct comma-separated names (one per run), got '{names}'")
        return chosen
    stems = [p.stem for p in runs]
    if len(set(stems)) == len(stems):
        return stems
    return [str(p) for p in runs]


def _read(path: Path, what: str, reader: Callable[[Path], T]) -> T:
    """Read a qrels or run file (the reader names the file and line of any problem); refuse an empty one."""
    data = reader(path)
    if not data:
        raise UserError(f"{path}: empty {what} file")
    return data


def _collapsed(
    qrels: dict[str, dict[str, int]], runs: dict[str, dict[str, dict[str, float]]], results: Path | None
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, float]]]]:
    """Qrels and runs on the duplicate groups of RESULTS; a run naming a result not in RESULTS is refused."""
    from recommender.duplicates import DuplicateGroups
    from recommender.metrics import collapse
    from recommender.records import load_records

    if results is None:
        raise UserError("--collapse-duplicates needs --results: the results file the runs rank")
    records, _ = load_records(results, "result", False)
    groups = DuplicateGroups()
    groups.build((r.id, r.title) for r in records)
    known = {r.id for r in records}
    out: dict[str, dict[str, dict[str, float]]] = {}
    grouped_qrels = qrels
    for name, run in runs.items():
        unknown = sorted({d for docs in run.values() for d in docs} - known)
        if unknown:
            raise UserError(f"run '{name}' ranks {len(unknown)} result(s) not in {results} (first: '{unknown[0]}'): "
                            "is it from another data set?")
        grouped_qrels, out[name] = collapse(qrels, run, groups.mapping())
    return grouped_qrels, out


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command()
    def compare(
        runs: Annotated[list[Path], typer.Argument(help="two or more TREC run files (from 'techmatch eval --run')")],
        qrels: Annotated[Path, typer.Option("--qrels", help="TREC qrels: need_id 0 result_id grade")],
        min_grade: Annotated[int, typer.Option("--min-grade", min=1, help="grade counted as relevant")] = 1,
        test: Annotated[str, typer.Option("--test", help="paired test: student (t-test) or fisher")] = "student",
        alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="significance level")] = 0.05,
        permutations: Annotated[int, typer.Option("--permutations", min=100, help="Fisher test draws")] = 1000,
        names: Annotated[str | None, typer.Option("--names", help="system names, comma-separated")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print means and tests as one JSON object")] = False,
        collapse_duplicates: Annotated[bool, typer.Option(
            "--collapse-duplicates", help="score duplicate groups of results as one item (needs --results)")] = False,
        results: Annotated[Path | None, typer.Option(
            "--results", help="the results the runs rank (their duplicate groups, with --collapse-duplicates)")] = None,
    ) -> None:
        """Score runs side by side on the same needs, with a paired significance test per metric and pair."""
        from eval.compare import compare_runs, format_comparison
        from recommender.trec import read_qrels, read_run

        if len(runs) < 2:
            raise UserError(f"give at least two run files to compare, got {len(runs)}")
        if test not in TESTS:
            raise UserError(f"--test must be one of {', '.join(TESTS)}, got '{test}'")
        if not 0 < alpha < 1:
            raise UserError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
        repeated = [str(p) for i, p in enumerate(runs) if p.resolve() in {q.resolve() for q in runs[:i]}]
        if repeated and names is None:
            raise UserError(f"run file {repeated[0]} is given twice: compare two different runs "
                            "(or name each one with --names)")
        systems = _system_names(runs, names)
        judged = _read(qrels, "qrels", read_qrels)
        loaded = {name: _read(path, "run", read_run) for name, path in zip(systems, runs, strict=True)}

        from recommender.metrics import evaluable_queries

        wanted = set(evaluable_queries(judged, min_grade))
        if not wanted:
            raise UserError(f"{qrels}: no need has a judgement with grade >= {min_grade}; lower --min-grade")
        if collapse_duplicates:
            judged, loaded = _collapsed(judged, loaded, results)
        for name, run in loaded.items():
            if not wanted & set(run):
                typer.echo(
                    f"warning: run '{name}' ranks none of the {len(wanted)} judged needs (scored 0): "
                    "is it from another data set?", err=True,
                )
        report = compare_runs(judged, loaded, min_grade=min_grade, test=test, alpha=alpha, n_permutations=permutations)
        if as_json:
            payload = {
                "systems": report.systems, "queries": report.n_queries, "min_grade": min_grade, "test": test,
                "alpha": alpha, "means": report.means,
                "tests": [
                    {
                        "baseline": t.baseline, "system": t.system, "metric": t.metric, "delta": t.delta,
                        "p_value": t.p_value, "significant": t.significant,
                        "wins": t.wins, "ties": t.ties, "losses": t.losses,
                    }
                    for per_metric in report.tests.values() for t in per_metric.values()
                ],
                "notes": report.notes,
            }
            typer.echo(json.dumps(payload, ensure_ascii=False))
        else:
            typer.echo(format_comparison(report))
