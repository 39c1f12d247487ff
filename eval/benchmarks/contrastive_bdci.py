"""Contrastive fine-tuning of e5-small (issue 12 item 4) on bdci2019 dev, out of fold, split by need and by pair.

    nice python -m eval.benchmarks.contrastive_bdci [--folds 5] [--train-layers 2] [--epochs 2] [--threads 1]
                                                     [--split need --split pair] [--write]

For every fold the top layers of e5-small are fine-tuned on the training part's judgements (need title against
results judged >= 2, the need's grade-0 results as hard negatives, in-batch negatives,
``embeddings/contrastive.py``), every one of the 7,324 results is re-embedded with the fold's weights, and the
evaluated needs are ranked by the dense signal alone and by the default hybrid (dense + bm25 + char), base
model against tuned. Figures: recall@100 and nDCG@10 over all out-of-fold needs, paired t-test p-values,
seconds per fold. Split by pair (seen needs), a need's results judged in the training part are left out of
both rankings, as in ``learning_bdci``. ``--write`` puts the tables into LEARNING.md (its section between the
``contrastive`` markers). Resumable: each fold's weights are checkpointed per epoch in ``--work``.
"""

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from eval.benchmarks.shortlist_bdci import DEFAULT_DATA
from eval.benchmarks.splits import SPLIT_TITLES, SPLITS, fold_qrels, pair_folds

REPORT = Path(__file__).with_name("LEARNING.md")
BEGIN, END = "<!-- contrastive: begin -->", "<!-- contrastive: end -->"


def main(
    data: Annotated[Path, typer.Option(help="bdci2019 folder (dev half only)")] = DEFAULT_DATA,
    folds: Annotated[int, typer.Option(min=2, help="folds of each split")] = 5,
    run_folds: Annotated[int, typer.Option(min=1, help="folds actually run (from the first)")] = 99,
    train_layers: Annotated[int, typer.Option(min=1, max=12, help="top layers fine-tuned")] = 2,
    epochs: Annotated[int, typer.Option(min=1)] = 4,
    batch: Annotated[int, typer.Option(min=2)] = 32,
    lr: Annotated[float, typer.Option()] = 5e-5,
    hard_negatives: Annotated[int, typer.Option(min=0, help="grade-0 results per example per step")] = 1,
    min_grade: Annotated[int, typer.Option(min=1, max=3, help="grade of a positive (and of a relevant result)")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
    seed: Annotated[int, typer.Option()] = 0,
    split: Annotated[list[str] | None, typer.Option(help="need or pair; default both")] = None,
    work: Annotated[Path, typer.Option(help="checkpoints")] = Path("var/contrastive_bdci"),
    write: Annotated[bool, typer.Option(help="write the section of LEARNING.md")] = False,
) -> None:
    """Out-of-fold recall@100 and nDCG@10 of the contrastively tuned dense signal, alone and in the hybrid."""
    import torch

    from embeddings.contrastive import SplitEncoder, TrainConfig
    from recommender.learning.contrastive import cross_validate
    from recommender.pipeline import new_index
    from recommender.records import load_records
    from recommender.trec import read_qrels

    splits = tuple(dict.fromkeys(split or SPLITS))
    if any(s not in SPLITS for s in splits):
        raise typer.BadParameter(f"unknown split in {splits}: use {', '.join(SPLITS)}")
    if not (data / "qrels.dev.txt").exists():
        raise typer.BadParameter(f"{data}: the shared bdci2019 data is not there")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    needs = {n.id: n for n in load_records(data / "needs.dev.jsonl", "need")[0]}
    qrels = read_qrels(data / "qrels.dev.txt")
    start = time.perf_counter()
    index = new_index("result")
    index.build(load_records(data / "results.jsonl", "result")[0])
    index_seconds = time.perf_counter() - start
    config = TrainConfig(train_layers=train_layers, epochs=epochs, batch_size=batch, lr=lr,
                         hard_negatives=hard_negatives, seed=seed)
    start = time.perf_counter()
    encoder = SplitEncoder(train_layers)
    encoder.prepare([r.as_passage().dense_text for r in index.records.values()], "passage")
    encoder.prepare([n.as_query().dense_text for n in needs.values() if n.id in qrels], "query")
    frozen_seconds = time.perf_counter() - start
    groups, ids, grades = [], [], []
    for need_id in sorted(qrels):
        for result_id, grade in sorted(qrels[need_id].items()):
            groups.append(need_id)
            ids.append(result_id)
            grades.append(grade)
    report = {}
    for name in splits:
        fold_list = [(fold_qrels(groups, ids, grades, train), fold_qrels(groups, ids, grades, test))
                     for train, test in pair_folds(name, groups, folds, seed)][:run_folds]
        report[name] = cross_validate(index, needs, fold_list, config, encoder, min_grade, work / name, True,
                                      by_pair=name == "pair")
        typer.echo(json.dumps({"split": name, **report[name]}, ensure_ascii=False))
    timings = {"index_seconds": round(index_seconds, 1), "frozen_layers_seconds": round(frozen_seconds, 1)}
    typer.echo(json.dumps(timings))
    if write:
        command = (f"nice python -m eval.benchmarks.contrastive_bdci --folds {folds}"
                   + (f" --run-folds {run_folds}" if run_folds < folds else "")
                   + f" --train-layers {train_layers} --epochs {epochs} --batch {batch} --lr {lr} "
                   f"--hard-negatives {hard_negatives} --min-grade {min_grade} --threads {threads} --seed {seed} "
                   + " ".join(f"--split {s}" for s in splits) + " --write")
        section = _section(report, timings, command, min(folds, run_folds), folds)
        text = REPORT.read_text(encoding="utf-8")
        if BEGIN in text:
            text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        REPORT.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {REPORT}")


def _p(value: float | None) -> str:
    if value is None:
        return "no difference"
    return "p < 0.0001" if value < 1e-4 else f"p = {value:.4f}"


def _section(report: dict, timings: dict, command: str, ran: int, folds: int) -> str:
    cols = list(report)
    lines = [
        BEGIN,
        "## Contrastive fine-tuning of the e5 bi-encoder (issue 12 item 4)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, 2 CPU cores shared with other engineers' torch jobs "
        f"(load average about 3 during the run, so seconds are pessimistic), torch threads as in the command; {ran} of "
        f"{folds} folds run per split. p: paired t-test over the evaluated needs, tuned against base.",
        "",
        "| | " + " | ".join(SPLIT_TITLES[s] for s in cols) + " |",
        "|---|" + "---|" * len(cols),
        "| evaluated queries | " + " | ".join(str(report[s]["figures"]["queries"]) for s in cols) + " |",
    ]
    for signal, title in (("dense", "dense e5 alone"), ("hybrid", "hybrid dense + bm25 + char")):
        for metric in ("recall@100", "ndcg@10"):
            cells = []
            for s in cols:
                f = report[s]["figures"][signal][metric]
                cells.append(f"{f['base']} -> **{f['tuned']}** ({_p(f['p'])})")
            lines.append(f"| {title}, {metric}: base -> tuned | " + " | ".join(cells) + " |")
    seconds = {s: np.mean([r["seconds"] for r in report[s]["folds"]]) for s in cols}
    train_seconds = {s: np.mean([r["train_seconds"] for r in report[s]["folds"]]) for s in cols}
    lines.append("| seconds per fold (training + re-embedding 7,324 results + ranking) | "
                 + " | ".join(f"{seconds[s]:.0f} ({train_seconds[s]:.0f} training)" for s in cols) + " |")
    lines += [
        "",
        f"Once per run: the base index {timings['index_seconds']} s (embedding cache warm), the frozen layers over "
        f"every result and need {timings['frozen_layers_seconds']} s.",
        "",
        "| split | fold | needs | examples | seconds | hybrid R@100 base / tuned | dense R@100 base / tuned "
        "| loss per epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in cols:
        for r in report[s]["folds"]:
            lines.append(f"| {s} | {r['fold']} | {r['needs']} | {r['examples']} | {r['seconds']} | "
                         f"{r['hybrid_base_recall']} / {r['hybrid_tuned_recall']} | "
                         f"{r['dense_base_recall']} / {r['dense_tuned_recall']} | {r['epoch_losses']} |")
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    typer.run(main)
