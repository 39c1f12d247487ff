"""Refit plus re-prioritisation of the review loop at 30,000 results (target: under 2 s on 2 cores).

    python -m eval.benchmarks.review_speed [--results 30000] [--decisions 100,1000,5000] [--repeat 3] [--json]

The pool is the demo world's results (titles, abstracts, keywords), the one-shot prior is the world's own
readiness-and-pull order with noise, and the decisions are the first N results of that order labelled by the
world's transferable set: the state a campaign is in after N decisions. Each figure is the median of
``--repeat`` refits (fit on the decisions + pseudo-negatives, then every result scored and the next batch
picked); feature building is timed separately (once a campaign, not a decision).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Annotated

import numpy as np
import typer

from data.synthetic import generate_world
from recommender.review import ReviewLoop, build_features

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    results: Annotated[int, typer.Option("--results", min=100)] = 30000,
    decisions: Annotated[str, typer.Option("--decisions")] = "100,1000,5000",
    repeat: Annotated[int, typer.Option("--repeat", min=1)] = 3,
    classifier: Annotated[str, typer.Option("--classifier")] = "logistic",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the refit seconds at each number of decisions."""
    world = generate_world(7, results, max(results // 12, 10), 241, 204)
    ids = [r["id"] for r in world.results]
    texts = ["。".join([r["title"], "、".join(r.get("keywords", [])), r.get("abstract", "")]) for r in world.results]
    rng = np.random.default_rng(0)
    prior = {rid: float((rid in world.transferable) + rng.normal(0, 1.0)) for rid in ids}
    start = time.perf_counter()
    features = build_features(ids, texts, prior=prior)
    figures: dict[str, object] = {"results": len(ids), "features_seconds": round(time.perf_counter() - start, 2),
                                  "columns": features.matrix.shape[1]}
    order = sorted(ids, key=lambda r: -prior[r])
    for n in (int(x) for x in decisions.split(",")):
        loop = ReviewLoop(features, classifier=classifier)
        loop.decide_many((rid, int(rid in world.transferable)) for rid in order[:n])
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            loop.refit()
            loop.next_ids(10)
            times.append(time.perf_counter() - t)
        figures[f"refit_seconds@{n}"] = round(statistics.median(times), 3)
        typer.echo(f"{n} decisions: {figures[f'refit_seconds@{n}']} s", err=True)
    typer.echo(json.dumps(figures) if as_json else "\n".join(f"{k:>22}  {v}" for k, v in figures.items()))


if __name__ == "__main__":
    app()
