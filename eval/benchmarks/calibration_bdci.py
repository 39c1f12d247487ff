"""Calibration of the grader's probabilities on bdci2019 dev, out of fold (by need and by pair).

    python -m eval.benchmarks.calibration_bdci [--folds 5] [--seed 0] [--split need --split pair] [--plot F.png]

The same folds as ``learning_bdci`` (``eval/benchmarks/splits.py``): a grader is fitted on each fold's training
pairs exactly as ``techmatch train`` fits one (``fit_grader``: threshold models, isotonic calibration fitted out of
fold on the training needs) and predicts the held pairs. Two probabilities are measured:

* the card's: the probability shown beside the grade label, P(grade = shown grade), against whether the
  judged grade is the shown one (top-label calibration);
* each threshold's: P(grade >= k) against whether the judged grade is >= k (k = 1, 2, 3).

ECE (10 equal-width bins, ``recommender.metrics.expected_calibration_error``) for the shipped grader and for the
same models without their isotonic maps (what calibration buys), and a reliability diagram (PNG) of the split
by need. The last line of standard output is one JSON object with every figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from matplotlib.figure import Figure

from eval.benchmarks.splits import SPLITS, pair_folds
from recommender.learning.features import PairFeaturizer
from recommender.learning.grader import Grader
from recommender.learning.training import fit_grader, judged_pairs
from recommender.metrics import calibration_bins, expected_calibration_error
from recommender.pipeline import new_index
from recommender.records import load_records
from recommender.trec import read_qrels

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "bdci2019"
PLOT = Path(__file__).with_name("figures") / "bdci2019" / "calibration_need.png"
BINS = 10


def _uncalibrated(grader: Grader) -> Grader:
    """The same threshold models without their isotonic maps (raw LightGBM probabilities)."""
    empty = [{"x": [], "y": []} for _ in grader.calibration]
    return Grader(grader.levels, grader.boosters, empty, grader.feature_names, grader.signals, grader.depth)


def out_of_fold(features: np.ndarray, grades: np.ndarray, groups: np.ndarray, split: str, folds: int,
                seed: int, names: list[str], signals: list[str], depth: int) -> dict[str, np.ndarray]:
    """Held-out per-level probabilities of the shipped and the uncalibrated grader, and the judged grades."""
    shipped = np.zeros((len(grades), 4))
    raw = np.zeros((len(grades), 4))
    for train, test in pair_folds(split, groups, folds, seed):
        grader = fit_grader(features[train], grades[train], groups[train], names, signals, depth, seed,
                            levels=[0, 1, 2, 3])
        shipped[test] = grader.proba_from_features(features[test])
        raw[test] = _uncalibrated(grader).proba_from_features(features[test])
    return {"shipped": shipped, "uncalibrated": raw, "true": grades}


def _median(proba: np.ndarray) -> np.ndarray:
    return (np.cumsum(proba, axis=1) >= 0.5).argmax(axis=1)


def figures(proba: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """ECE of the card's probability and of each threshold's, and the share of pairs whose shown grade is right."""
    shown = _median(proba)
    out = {"card_ece": expected_calibration_error(proba[np.arange(len(true)), shown], shown == true, BINS),
           "card_mean_probability": float(proba[np.arange(len(true)), shown].mean()),
           "card_accuracy": float((shown == true).mean())}
    for k in (1, 2, 3):
        out[f"ge{k}_ece"] = expected_calibration_error(proba[:, k:].sum(1), true >= k, BINS)
    return {key: round(value, 4) for key, value in out.items()}


def plot(oof: dict[str, np.ndarray], path: Path, title: str) -> None:
    """Reliability diagrams: the card's probability (shipped vs uncalibrated) and each threshold's (shipped)."""
    fig = Figure(figsize=(10, 4.6))
    left, right = fig.subplots(1, 2)
    true = oof["true"]
    for name, style in (("shipped", "o-"), ("uncalibrated", "s--")):
        proba = oof[name]
        shown = _median(proba)
        table = calibration_bins(proba[np.arange(len(true)), shown], shown == true, BINS)
        ece = expected_calibration_error(proba[np.arange(len(true)), shown], shown == true, BINS)
        left.plot(table["predicted"], table["observed"], style, label=f"{name} (ECE {ece:.3f})")
        if name == "shipped":  # the pairs behind each point: the sparse bins are the jumpy ones
            for x, y, n in zip(table["predicted"], table["observed"], table["pairs"]):
                left.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    left.set_title("card: P(shown grade) vs shown grade right")
    proba = oof["shipped"]
    for k, style in ((1, "o-"), (2, "^-"), (3, "v-")):
        p = proba[:, k:].sum(1)
        table = calibration_bins(p, true >= k, BINS)
        right.plot(table["predicted"], table["observed"], style,
                   label=f"P(grade >= {k}) (ECE {expected_calibration_error(p, true >= k, BINS):.3f})")
    right.set_title("shipped: P(grade >= k) vs judged grade >= k")
    for ax in (left, right):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability (10 bins)")
        ax.set_ylabel("observed frequency")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(
    data: Annotated[Path, typer.Option(help="bdci2019 folder")] = DATA,
    folds: Annotated[int, typer.Option(help="cross-validation folds")] = 5,
    seed: Annotated[int, typer.Option(help="model seed (and the shuffle of the split by pair)")] = 0,
    split: Annotated[list[str] | None, typer.Option(help="need or pair; default both")] = None,
    plot_path: Annotated[Path, typer.Option("--plot", help="reliability diagram of the split by need")] = PLOT,
) -> None:
    """ECE and reliability diagram of the grader's probabilities, out of fold."""
    if not data.exists():
        raise typer.BadParameter(f"{data} not found (the shared bdci2019 data)")
    splits = tuple(dict.fromkeys(split or SPLITS))
    needs, _ = load_records(data / "needs.dev.jsonl", "need")
    results, _ = load_records(data / "results.jsonl", "result")
    qrels = read_qrels(data / "qrels.dev.txt")
    start = time.perf_counter()
    index = new_index("result")
    index.build(results)
    featurizer = PairFeaturizer(index)
    pair_needs, pair_ids, grades = judged_pairs(index, [n for n in needs if n.id in qrels], qrels)
    features = featurizer.transform(pair_needs, pair_ids)
    feature_seconds = time.perf_counter() - start
    groups = np.asarray([n.id for n in pair_needs])
    out: dict[str, object] = {"pairs": len(grades), "needs": len(set(groups)), "bins": BINS,
                              "feature_seconds": round(feature_seconds, 1)}
    for name in splits:
        oof = out_of_fold(features, np.asarray(grades), groups, name, folds, seed, featurizer.names,
                          featurizer.signals, featurizer.depth)
        out[name] = {variant: figures(oof[variant], oof["true"]) for variant in ("shipped", "uncalibrated")}
        shown = _median(oof["shipped"])
        bins = calibration_bins(oof["shipped"][np.arange(len(shown)), shown], shown == oof["true"], BINS)
        out[name]["card_bins"] = bins.round(4).to_dict(orient="records")
        if name == "need":
            plot(oof, plot_path, f"bdci2019 dev, grader out of fold by need ({len(grades)} judged pairs, "
                                 f"{len(set(groups))} needs)")
        typer.echo(json.dumps({name: out[name]}))
    typer.echo(json.dumps(out))


if __name__ == "__main__":
    typer.run(main)
