"""``techmatch train --contrastive``: fine-tune the dense model on the judgements, install it only if it retrieves
better out of fold (``recommender.learning.contrastive``). Called by ``train`` before the grader is retrained, so
a grader installed after it learns the new model's similarities."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from recommender.records import Record


def run_contrastive(
    index_dir: Path, matcher: Any, needs: Mapping[str, Record], judgements: Mapping[str, Mapping[str, int]],
    folds: int, train_layers: int, epochs: int, threads: int, seed: int, recall_at: int = 100,
) -> dict[str, Any]:
    """Cross-validate, and if kept, re-embed the index's results side with the tuned model and swap it in."""
    import torch

    from embeddings.contrastive import TrainConfig
    from recommender.learning.contrastive import train_contrastive
    from recommender.pipeline import new_index
    from recommender.settings import PipelineSettings, default_data_dir

    torch.set_num_threads(threads)
    settings = PipelineSettings()
    config = TrainConfig(train_layers=train_layers, epochs=epochs, seed=seed)
    report = train_contrastive(matcher.results, needs, judgements, default_data_dir(), config, folds,
                               work=settings.cache_dir / "contrastive", depth=recall_at)
    if report["model"] is None:
        return report
    index = matcher.results
    configured = settings.model_copy(update={
        "model": report["model"], "signals": list(index.signals), "weights": dict(index.weights),
        "rrf_k": index.rrf_k, "depth": index.depth, "ann_backend": index.signals["dense"].backend,
    })
    tuned = new_index("result", configured)
    tuned.build(list(index.records.values()))
    matcher.install_side(index_dir, "result", tuned)
    matcher.results = tuned
    return report


def echo_report(report: Mapping[str, Any], index_dir: Path) -> None:
    """The contrastive part of ``train``'s report, as lines."""
    figures = report["out_of_fold"]
    typer.echo(f"contrastive fine-tuning: {report['folds']} folds split by need over {report['needs_with_positives']} "
               f"needs with a relevant result; out of fold, base -> tuned (paired t-test p):")
    for signal in ("hybrid", "dense"):
        cells = [f"{m} {f['base']} -> {f['tuned']} (p {f['p']})" for m, f in figures[signal].items()]
        typer.echo(f"  {'index ranking' if signal == 'hybrid' else 'dense alone'}: {', '.join(cells)}")
    if report["model"]:
        typer.echo(f"  kept ({report['metric']} improved): results re-embedded with {report['model']} in {index_dir}")
    else:
        typer.echo(f"  NOT kept ({report['metric']} did not improve): the index is unchanged")
