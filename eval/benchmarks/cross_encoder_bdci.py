"""Issue 12 item 3 measured: the fine-tuned cross-encoder's probabilities as grader and re-ranker features.

    python -m eval.benchmarks.cross_encoder_bdci [--folds 5] [--ce-candidates 30] [--epochs 3] [--train-layers 4]

On bdci2019 dev (the held-out half is never read). The cross-encoder (``recommender/learning/cross_encoder.py``)
is trained once per fold split by need, on that fold's training pairs; it scores the fold's held judged pairs
and the held needs' hybrid top ``--ce-candidates``, so every cross-encoder value any model sees is out of
fold (stacking): no value comes from a cross-encoder that saw the pair or its need. The LightGBM grader and
re-ranker are then cross-validated exactly as ``eval/benchmarks/learning_bdci.py`` does, by need and by
pair, without and with the three cross-encoder columns (candidates below ``--ce-candidates`` have them
missing, as in ``techmatch``); split by pair the columns are these need-held-out values too (a
cross-encoder per pair fold would cost another run of training), so they do not use what the seen needs'
other pairs could teach it. Reported: grade score, nDCG@10, recall@100 with paired tests (grade: paired
t-test over the needs' mean absolute errors; ranking: ranx's paired t-test over needs), the
cross-encoder's own grade score and AUCs, and the seconds of training per fold. Each fold's predictions are
saved in ``--work`` as soon as it ends (and each epoch within it), so a stopped run resumes.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from eval.benchmarks.learning_bdci import DATA, _cross_validate, prepare
from eval.benchmarks.splits import SPLIT_TITLES, SPLITS, pair_folds
from eval.compare import compare_runs
from recommender.learning.training import grade_score
from recommender.metrics import evaluable_queries

REPORT = Path(__file__).with_name("CROSS_ENCODER.md")


def _grade_test(base: dict, other: dict) -> dict:
    """Paired t-test over needs of the mean absolute grade error (same pairs in both, same order)."""
    from scipy.stats import ttest_rel

    needs = base["need"]
    assert (needs == other["need"]).all() and (base["true"] == other["true"]).all()
    errors = {}
    for name, graded in (("base", base), ("other", other)):
        error = np.abs(graded["true"] - graded["predicted"])
        errors[name] = np.array([error[needs == q].mean() for q in sorted(set(needs))])
    test = ttest_rel(errors["other"], errors["base"])
    wins = int((errors["other"] < errors["base"]).sum())
    losses = int((errors["other"] > errors["base"]).sum())
    return {"p": round(float(test.pvalue), 4), "needs_better": wins, "needs_worse": losses}


def main(
    data: Annotated[Path, typer.Option(help="bdci2019 folder")] = DATA,
    folds: Annotated[int, typer.Option(help="folds (the cross-encoder is trained once per need fold)")] = 5,
    candidates: Annotated[int, typer.Option(help="hybrid candidates re-ranked per need")] = 300,
    ce_candidates: Annotated[int, typer.Option(help="top candidates per need the cross-encoder scores")] = 30,
    min_grade: Annotated[int, typer.Option(help="grade counted as relevant for ranking")] = 2,
    seed: Annotated[int, typer.Option(help="model and split seed")] = 0,
    tokens: Annotated[int, typer.Option(help="pair length in tokens")] = 64,
    train_layers: Annotated[int, typer.Option(help="top layers fine-tuned")] = 4,
    epochs: Annotated[int, typer.Option(help="epochs per fold")] = 3,
    threads: Annotated[int, typer.Option(help="torch threads")] = 2,
    work: Annotated[Path, typer.Option(help="per-fold predictions and checkpoints (resumable)")] = Path(
        "var/cross_encoder_bdci"),
    out: Annotated[Path, typer.Option(help="markdown report")] = REPORT,
) -> None:
    """Grader and re-ranker with and without the cross-encoder's out-of-fold probabilities, by need and by pair."""
    import torch
    from sklearn.metrics import roc_auc_score

    from recommender.learning.cross_encoder import CrossEncoderConfig, out_of_fold_cumulative

    if not data.exists():
        raise typer.BadParameter(f"{data} not found (the shared bdci2019 data)")
    torch.set_num_threads(threads)
    world = prepare(data, candidates)
    index = world.featurizer.index
    config = CrossEncoderConfig(tokens=tokens, train_layers=train_layers, epochs=epochs, seed=seed)
    need_folds = pair_folds("need", world.groups, folds, seed)
    results = [index.records[r] for r in world.pair_ids]
    extra = []
    for _, test in need_folds:
        held_needs = sorted(set(world.groups[test]))
        by_id = {n.id: n for n in world.needs}
        pairs = [(by_id[q], index.records[r]) for q in held_needs for r in world.top[q][0][:ce_candidates]]
        extra.append(([n for n, _ in pairs], [r for _, r in pairs]))
    start = time.perf_counter()
    fold_sets = [(np.flatnonzero(train), np.flatnonzero(test)) for train, test in need_folds]
    judged_ce, extra_ce = out_of_fold_cumulative(world.pair_needs, results, world.judged_y, fold_sets,
                                                 config=config, work=work, extra=extra)
    ce_seconds = time.perf_counter() - start
    names = [f"cross_encoder_ge{k}" for k in range(1, judged_ce.shape[1] + 1)]
    top_ce = {}
    for (_, test), values in zip(need_folds, extra_ce):
        row = 0
        for q in sorted(set(world.groups[test])):
            ids, x = world.top[q]
            columns = np.full((len(ids), judged_ce.shape[1]), np.nan)
            n = min(ce_candidates, len(ids))
            columns[:n] = values[row: row + n]
            row += n
            top_ce[q] = (ids, np.hstack([x, columns]))
    judged_with = np.hstack([world.judged_x, judged_ce])
    own = {"grade_score": round(grade_score(world.judged_y, (judged_ce >= 0.5).sum(axis=1)), 4),
           **{f"auc_ge{k}": round(float(roc_auc_score(world.judged_y >= k, judged_ce[:, k - 1])), 4)
              for k in range(1, judged_ce.shape[1] + 1)}}
    typer.echo(json.dumps({"cross_encoder_alone_out_of_fold": own, "seconds": round(ce_seconds)}))

    wanted = set(evaluable_queries(world.qrels, min_grade))
    rows = {}
    for split in SPLITS:
        base = _cross_validate(split, folds, seed, candidates, min_grade, world.featurizer, world.judged_x,
                               world.judged_y, world.groups, world.pair_ids, world.top, wanted)
        other = _cross_validate(split, folds, seed, candidates, min_grade, world.featurizer, judged_with,
                                world.judged_y, world.groups, world.pair_ids, top_ce, wanted,
                                names=world.featurizer.names + names)
        ranking = compare_runs(base["relevant"], {"without": base["runs"]["reranked"],
                                                  "with": other["runs"]["reranked"]}, min_grade,
                               ["ndcg@10", "recall@100"])
        rows[split] = {
            "without": {k: base["figures"][k] for k in ("grade_score",)} | {
                m: base["figures"]["reranked"][m] for m in ("ndcg@10", "recall@100")},
            "with": {k: other["figures"][k] for k in ("grade_score",)} | {
                m: other["figures"]["reranked"][m] for m in ("ndcg@10", "recall@100")},
            "hybrid": {m: base["figures"]["hybrid"][m] for m in ("ndcg@10", "recall@100")},
            "p_grade": _grade_test(base["graded"], other["graded"]),
            "p_ranking": {m: round(ranking.p_value("without", "with", m), 4) for m in ("ndcg@10", "recall@100")},
            "blend_weights_with": [f["blend_weight"] for f in other["folds"]],
        }
        typer.echo(json.dumps({"split": split, **rows[split]}))
    fold_seconds = _fold_seconds(work, folds)
    out.write_text(_report(rows, own, config, folds, ce_candidates, candidates, fold_seconds, ce_seconds),
                   encoding="utf-8")
    typer.echo(f"wrote {out}")


def _fold_seconds(work: Path, folds: int) -> list[float]:
    seconds = []
    for fold in range(1, folds + 1):
        path = work / f"fold{fold}" / "seconds.json"
        if path.is_file():
            seconds.append(json.loads(path.read_text(encoding="utf-8"))["seconds"])
    return seconds


def _report(rows: dict, own: dict, config, folds: int, ce_candidates: int, candidates: int,
            fold_seconds: list[float], ce_seconds: float) -> str:
    lines = [
        "# The cross-encoder as grader and re-ranker features (bdci2019 dev, out of fold)",
        "",
        f"Command: `python -m eval.benchmarks.cross_encoder_bdci --folds {folds} --ce-candidates {ce_candidates} "
        f"--candidates {candidates} --tokens {config.tokens} --train-layers {config.train_layers} "
        f"--epochs {config.epochs}`  ",
        f"Machine: {platform.processor() or platform.machine()}, 2 CPU cores shared with another engineer's "
        "torch jobs (timings are upper bounds).",
        "",
        f"Cross-encoder: e5-small port, pair of {config.tokens} tokens, top {config.train_layers} layers and an "
        f"ordinal head trained {config.epochs} epochs per need fold (frozen layers cached); "
        f"{round(ce_seconds / 60, 1)} minutes for the {folds} folds"
        + (f" (per fold, seconds: {', '.join(str(round(s)) for s in fold_seconds)})" if fold_seconds else "")
        + ". Alone, out of fold: grade score " + str(own["grade_score"]) + ", AUC(grade >= 1/2/3) "
        + " / ".join(str(own[f"auc_ge{k}"]) for k in (1, 2, 3)) + ".",
        "",
        "| | " + " | ".join(SPLIT_TITLES[s] for s in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]

    def row(label: str, value) -> str:
        return f"| {label} | " + " | ".join(str(value(s)) for s in rows) + " |"

    lines += [
        row("grade score, grader without -> with", lambda s: f"{rows[s]['without']['grade_score']} -> "
            f"**{rows[s]['with']['grade_score']}**"),
        row("p (paired t-test over needs' MAE); needs better / worse", lambda s: f"{rows[s]['p_grade']['p']}; "
            f"{rows[s]['p_grade']['needs_better']} / {rows[s]['p_grade']['needs_worse']}"),
        row("hybrid zero-shot nDCG@10 / recall@100", lambda s: f"{rows[s]['hybrid']['ndcg@10']} / "
            f"{rows[s]['hybrid']['recall@100']}"),
        row("re-ranked nDCG@10, without -> with", lambda s: f"{rows[s]['without']['ndcg@10']} -> "
            f"**{rows[s]['with']['ndcg@10']}** (p {rows[s]['p_ranking']['ndcg@10']})"),
        row("re-ranked recall@100, without -> with", lambda s: f"{rows[s]['without']['recall@100']} -> "
            f"**{rows[s]['with']['recall@100']}** (p {rows[s]['p_ranking']['recall@100']})"),
        row("re-ranker weight chosen per fold (with)", lambda s: rows[s]["blend_weights_with"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    typer.run(main)
