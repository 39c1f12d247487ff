"""techmatch review: replay a review campaign against a labels file (``review simulate``, CONTRACT.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from recommender.errors import UserError

review_app = typer.Typer(help="Review campaigns: the loop that learns from every decision.", no_args_is_help=True)


@review_app.command("simulate")
def simulate_command(
    results: Annotated[Path, typer.Option("--results", help="research results (.jsonl/.csv/.xlsx)")],
    labels: Annotated[Path, typer.Option("--labels", help="result_id<TAB>label (1 transferable, 0 not) a line")],
    needs: Annotated[Path | None, typer.Option("--needs", help="needs whose market pull the strategy may use")] = None,
    strategy: Annotated[str, typer.Option("--strategy", help="loop, one-shot or random")] = "loop",
    prior_included: Annotated[int, typer.Option("--prior-included", min=0, help="known transferable at start")] = 1,
    prior_excluded: Annotated[int, typer.Option("--prior-excluded", min=0, help="known not transferable")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="draws the priors (and the random order)")] = 0,
    classifier: Annotated[str, typer.Option("--classifier", help="svm, logistic or nb")] = "svm",
    plot: Annotated[Path | None, typer.Option("--plot", help="write the gain curve to this PNG")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as one JSON line")] = False,
) -> None:
    """Read the labelled pool in the strategy's order; report the reads it took to find what is transferable."""
    from recommender.records import load_records
    from recommender.review.classifier import CLASSIFIERS
    from recommender.review.labels import read_labels
    from recommender.review.pool import market_for, pool_features
    from recommender.review.simulate import STRATEGIES, simulate

    if strategy not in STRATEGIES:
        raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, got '{strategy}'")
    if classifier not in CLASSIFIERS:
        raise UserError(f"--classifier must be one of {', '.join(CLASSIFIERS)}, got '{classifier}'")
    if plot is not None and plot.suffix.lower() != ".png":
        raise UserError(f"--plot must name a .png file, got '{plot}'")
    result_records, _ = load_records(results, "result")
    by_id = {r.id: r for r in result_records}
    read = read_labels(labels, by_id)
    ones = sum(read.labels.values())
    if prior_included > ones or prior_excluded > len(read.labels) - ones:
        raise UserError(f"cannot start from {prior_included} transferable and {prior_excluded} other results: "
                        f"{labels} has {ones} and {len(read.labels) - ones}")
    market = index = None
    if needs is not None and strategy != "random":
        need_records, _ = load_records(needs, "need")
        market, index = market_for(result_records, need_records)
    pool = list(read.labels)
    features = pool_features(pool, by_id, market, read.context, index=index)
    outcome = simulate(features, read.labels, strategy, prior_included, prior_excluded, seed, classifier)
    figures = outcome.to_dict()
    if plot is not None:
        from eval.plots import plot_gain_curves

        plot_gain_curves({strategy: outcome.gains}, outcome.pool, outcome.relevant, plot)
        typer.echo(f"gain curve -> {plot}", err=True)
    if as_json:
        typer.echo(json.dumps(figures))
    else:
        for key, value in figures.items():
            typer.echo(f"{key:>12}  {value}")


def register(app: typer.Typer) -> None:
    """Add ``techmatch review ...`` to the app."""
    app.add_typer(review_app, name="review")
