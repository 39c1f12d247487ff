"""Shortlist precision and speed on the synthetic demo world, against its ground truth (transferable.txt).

    python -m eval.benchmarks.shortlist_demo --world DIR [--index DIR] [--signals bm25,char] [--json]

Builds (or reuses, with --index) the results index, times the whole triage (matching every need in
batches, scoring, push lists for the top K with funds and enterprises), and reports the precision of the
top K = |transferable| against the world's ground truth, next to the parts alone (market pull only,
readiness only) and random.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from recommender.matcher import Matcher
from recommender.records import load_needs, load_results
from recommender.settings import PipelineSettings
from recommender.triage import load_enterprises, load_funds, market_pull, score_results, shortlist

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def precision(ranked_ids: list[str], relevant: set[str], k: int) -> float:
    return sum(1 for rid in ranked_ids[:k] if rid in relevant) / k if k else 0.0


@app.command()
def main(
    world: Annotated[Path, typer.Option("--world", help="folder from 'techmatch demo-world'")],
    index_dir: Annotated[Path | None, typer.Option("--index", help="reuse an index of the world's results")] = None,
    signals: Annotated[str | None, typer.Option("--signals", help="signals when building the index")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Precision of the top |transferable| results and the triage time, given a built index."""
    needs = load_needs(world / "needs.jsonl")
    transferable = set((world / "transferable.txt").read_text(encoding="utf-8").split())
    funds = load_funds(world / "funds.jsonl")
    enterprises = load_enterprises(world / "enterprises.jsonl")
    start = time.perf_counter()
    if index_dir is not None:
        matcher = Matcher.load(index_dir)
    else:
        settings = PipelineSettings(signals=signals) if signals else PipelineSettings()
        matcher = Matcher.build(load_results(world / "results.jsonl"), None, settings)
    index_seconds = time.perf_counter() - start
    k = len(transferable)

    start = time.perf_counter()
    entries = shortlist(matcher, needs, k, funds, enterprises)
    triage_seconds = time.perf_counter() - start
    shortlisted = [e.result_id for e in entries]

    market = market_pull(matcher.results, needs, progress=False)
    scored = score_results(matcher.results.records, market)
    by_pull = [s.result_id for s in sorted(scored, key=lambda s: (-s.pull, s.result_id))]
    by_ready = [s.result_id for s in sorted(scored, key=lambda s: (-s.readiness, s.result_id))]
    figures = {
        "results": len(matcher.results), "needs": len(needs), "k": k,
        "signals": ",".join(matcher.results.signals),
        "precision@k": round(precision(shortlisted, transferable, k), 4),
        "precision@k_market_pull_only": round(precision(by_pull, transferable, k), 4),
        "precision@k_readiness_only": round(precision(by_ready, transferable, k), 4),
        "precision@k_random": round(k / len(matcher.results), 4),
        "index_seconds": round(index_seconds, 1), "triage_seconds": round(triage_seconds, 1),
        "pushes_per_result": round(sum(len(e.push) for e in entries) / max(1, len(entries)), 2),
    }
    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False))
    else:
        for key, value in figures.items():
            typer.echo(f"{key:>30}  {value}")


if __name__ == "__main__":
    app()
