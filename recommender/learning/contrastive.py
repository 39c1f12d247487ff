"""Contrastive fine-tuning of the dense signal from judgements, kept only when it retrieves better out of fold.

Judged pairs become training examples (``embeddings.contrastive``): a need's dense text (its title, what the
dense signal embeds for a query) against each result judged relevant (grade >= ``min_grade``, its dense text:
title and keywords), with the results judged 0 for the same need as hard negatives. Folds are split by need
(GroupKFold: a need is never both trained on and measured), each fold's weights re-embed every indexed result,
and the held needs are searched twice: the index as it is, and the same index with the tuned dense signal.
The tuned model is worth installing only if the index's own ranking (the fused one) reaches more relevant
results in its top 100 on needs it was not trained on.

Only the results side (needs -> results, the direction the examples teach) is re-embedded; the needs side keeps
its model, since no judgement measures the reverse direction.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.base import Embedder
from embeddings.contrastive import ContrastiveExample, SplitEncoder, TrainConfig, save_tuned
from recommender.dense import DenseSignal
from recommender.errors import UserError
from recommender.hybrid import HybridIndex
from recommender.metrics import per_query_scores
from recommender.records import Record

DEPTH = 100  # the decision's recall depth: what a first stage hands on (a re-ranker reads the top 100-300)
BASE_MODELS = ("e5-small",)  # what the tuned model starts from: the e5 port's weights


def contrastive_examples(
    needs: Mapping[str, Record], results: Mapping[str, Record], qrels: Mapping[str, Mapping[str, int]],
    min_grade: int = 2,
) -> list[ContrastiveExample]:
    """One example per (need, result judged >= ``min_grade``), with the need's grade-0 results as hard negatives."""
    out = []
    for need_id in sorted(qrels):
        need = needs.get(need_id)
        if need is None:
            continue
        judged = {r: g for r, g in qrels[need_id].items() if r in results}
        negatives = tuple(results[r].as_passage().dense_text for r, g in sorted(judged.items()) if g == 0)
        query = need.as_query().dense_text
        for result_id, grade in sorted(judged.items()):
            if grade >= min_grade:
                out.append(ContrastiveExample(query, results[result_id].as_passage().dense_text, negatives, need_id))
    return out


def with_dense(index: HybridIndex, embedder: Embedder) -> HybridIndex:
    """The same index with its dense signal re-embedded by ``embedder`` (other signals shared, not copied)."""
    if "dense" not in index.signals:
        raise UserError("this index has no dense signal to fine-tune (its signals: "
                        f"{', '.join(index.signals)})")
    signals = []
    for name, signal in index.signals.items():
        if name == "dense":
            fresh = DenseSignal(embedder, "flat")
            records = list(index.records.values())
            fresh.fit([r.id for r in records], [r.as_passage() for r in records])
            signal = fresh
        signals.append(signal)
    copy = HybridIndex(index.kind, signals, index.weights, index.rrf_k, index.depth)
    copy.records = index.records
    return copy


def _runs(index: HybridIndex, needs: Sequence[Record], exclude: Sequence[set[str]], qids: Sequence[str],
          depth: int) -> dict[str, dict[str, dict[str, float]]]:
    """Top-``depth`` runs of the fused ranking and of the dense signal alone, results in ``exclude`` left out."""
    fused = index.search([n.as_query() for n in needs], depth, exclude=list(exclude), explain=False)
    dense = index.signals["dense"].search([n.as_query() for n in needs], depth + max(map(len, exclude), default=0))
    out: dict[str, dict[str, dict[str, float]]] = {"hybrid": {}, "dense": {}}
    for qid, matches, hits, skip in zip(qids, fused, dense, exclude):
        out["hybrid"][qid] = {m.id: float(depth - m.rank + 1) for m in matches}
        kept = [d for d, _ in hits if d not in skip][:depth]
        out["dense"][qid] = {d: float(depth - i) for i, d in enumerate(kept)}
    return out


def paired_p(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided paired t-test p-value (None when every difference is zero)."""
    from scipy.stats import ttest_rel

    if len(a) < 2 or np.allclose(a, b):
        return None
    return float(ttest_rel(a, b).pvalue)


def cross_validate(
    index: HybridIndex, needs: Mapping[str, Record], folds: Sequence[tuple[dict, dict]], config: TrainConfig,
    encoder: SplitEncoder, min_grade: int = 2, work: Path | None = None, progress: bool = True,
    by_pair: bool = False, depth: int = DEPTH,
) -> dict[str, Any]:
    """Out-of-fold figures of the tuned dense signal against the index as it is.

    ``folds``: (training judgements, evaluated judgements) pairs. ``by_pair``: the training part may judge
    the evaluated needs too (seen needs); their results judged in training are then left out of both
    rankings, and each need is evaluated once per fold (query id ``need#fold``). Figures: recall@``depth`` and
    nDCG@10, base and tuned, with paired t-test p-values, for the fused ranking and the dense signal alone; the
    out-of-fold runs and judgements too (``runs``, ``evaluated``: the collapsed tables re-score them)."""
    metrics = [f"recall@{depth}", "ndcg@10"]
    results = index.records
    encoder.prepare([r.as_passage().dense_text for r in results.values()], "passage", progress)
    base_runs: dict[str, dict] = {"hybrid": {}, "dense": {}}
    tuned_runs: dict[str, dict] = {"hybrid": {}, "dense": {}}
    evaluated: dict[str, dict[str, int]] = {}
    fold_rows = []
    for number, (train_q, test_q) in enumerate(folds, start=1):
        start = time.perf_counter()
        examples = contrastive_examples(needs, results, train_q, min_grade)
        held = [n for n in sorted(test_q) if n in needs and any(g >= min_grade for g in test_q[n].values())]
        if not examples or not held:
            continue
        training = encoder.fine_tune(examples, config, work, progress, desc=f"fold {number} training")
        tuned = with_dense(index, encoder.embedder(f"e5-fold-{training['key']}"))
        qids = [f"{n}#{number}" if by_pair else n for n in held]
        exclude = [set(train_q.get(n, {})) if by_pair else set() for n in held]
        held_needs = [needs[n] for n in held]
        for runs, source in ((base_runs, index), (tuned_runs, tuned)):
            for signal, run in _runs(source, held_needs, exclude, qids, max(depth, 10)).items():
                runs[signal].update(run)
        fold_q = {}
        for qid, n in zip(qids, held):
            evaluated[qid] = dict(test_q[n])
            fold_q[qid] = dict(test_q[n])
        row = {"fold": number, "needs": len(held), "examples": len(examples), "train_seconds": training["seconds"],
               "seconds": round(time.perf_counter() - start, 1), "epoch_losses": training["epoch_losses"]}
        for signal in ("hybrid", "dense"):
            for system, runs in (("base", base_runs), ("tuned", tuned_runs)):
                _, scores = per_query_scores(fold_q, {q: runs[signal][q] for q in fold_q}, min_grade, metrics[:1])
                row[f"{signal}_{system}_recall"] = round(float(scores[metrics[0]].mean()), 4)
        fold_rows.append(row)
        encoder.reset()
    if not evaluated:
        raise UserError("no fold had both training examples and evaluated needs with a relevant result")
    figures: dict[str, Any] = {"queries": len(evaluated)}
    for signal in ("hybrid", "dense"):
        _, base = per_query_scores(evaluated, base_runs[signal], min_grade, metrics)
        _, tuned = per_query_scores(evaluated, tuned_runs[signal], min_grade, metrics)
        for metric in metrics:
            p = paired_p(tuned[metric], base[metric])
            figures[signal] = figures.get(signal, {})
            figures[signal][metric] = {"base": round(float(base[metric].mean()), 4),
                                       "tuned": round(float(tuned[metric].mean()), 4),
                                       "p": None if p is None else round(p, 4)}
    return {"figures": figures, "folds": fold_rows, "evaluated": evaluated,
            "runs": {"base": base_runs, "tuned": tuned_runs}}


def need_folds(qrels: Mapping[str, Mapping[str, int]], folds: int, seed: int = 0) -> list[tuple[dict, dict]]:
    """(training, held) judgements per fold, split by need (GroupKFold over the judged needs)."""
    from sklearn.model_selection import GroupKFold

    ids = np.asarray(sorted(qrels))
    out = []
    for train, test in GroupKFold(folds).split(ids, groups=ids):
        out.append(({q: dict(qrels[q]) for q in ids[train]}, {q: dict(qrels[q]) for q in ids[test]}))
    return out


def tuned_folder(data_dir: Path, state_digest: str) -> Path:
    """Where tuned weights go: named by their checksum, so a folder never changes under an index using it."""
    return data_dir / f"e5-tuned-{state_digest[:16]}"


def train_contrastive(
    index: HybridIndex, needs: Mapping[str, Record], qrels: Mapping[str, Mapping[str, int]], data_dir: Path,
    config: TrainConfig, folds: int = 5, min_grade: int = 2, work: Path | None = None, progress: bool = True,
    depth: int = DEPTH,
) -> dict[str, Any]:
    """Cross-validate the fine-tuning by need; if the fused recall@``depth`` improves out of fold, fine-tune on
    every judged need and save the weights. Returns the report; ``report["model"]`` is the spec to index with
    (None: not kept). Training always starts from e5-small's own weights; the baseline is the index as it is
    (with an earlier tuned model, that model, which may have seen the held needs: the comparison then leans
    towards keeping what is installed)."""
    dense = index.signals.get("dense")
    if dense is None:
        raise UserError(f"this index has no dense signal to fine-tune (its signals: {', '.join(index.signals)})")
    if index.shared_storage:
        raise UserError("--contrastive re-embeds the index in this process: not supported on the milvus backend")
    model = dense.embedder.name
    if model not in BASE_MODELS and not model.startswith("e5-tuned:"):
        raise UserError(f"--contrastive fine-tunes e5-small; this index's dense model is '{model}'")
    usable = {q: {r: g for r, g in j.items() if r in index.records} for q, j in qrels.items() if q in needs}
    positive = sorted(q for q, j in usable.items() if any(g >= min_grade for g in j.values()))
    if len(positive) < max(folds, 2):
        raise UserError(f"--contrastive needs judgements with a grade >= {min_grade} for at least {max(folds, 2)} "
                        f"indexed needs (one fold each), got {len(positive)}")
    import torch

    encoder = SplitEncoder(config.train_layers)
    torch.manual_seed(config.seed)
    oof = cross_validate(index, needs, need_folds(usable, folds, config.seed), config, encoder, min_grade,
                         work / "folds" if work else None, progress, depth=depth)
    recall = oof["figures"]["hybrid"][f"recall@{depth}"]
    report: dict[str, Any] = {"config": asdict(config), "folds": folds, "min_grade": min_grade,
                              "metric": f"recall@{depth}",
                              "judged_needs": len(usable), "needs_with_positives": len(positive),
                              "out_of_fold": oof["figures"], "per_fold": oof["folds"],
                              "kept": bool(recall["tuned"] > recall["base"]), "model": None}
    if not report["kept"]:
        return report
    examples = contrastive_examples(needs, index.records, usable, min_grade)
    report["final_training"] = encoder.fine_tune(examples, config, work / "final" if work else None, progress,
                                                 desc="final training (every judged need)")
    state = encoder.tuned_state()
    digest = hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()
    folder = tuned_folder(data_dir, digest)
    staging = folder.with_name(folder.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    save_tuned(staging, state, {"config": asdict(config), "examples": len(examples), "min_grade": min_grade,
                                "out_of_fold": json.loads(json.dumps(oof["figures"])), "base_model": "e5-small"})
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    report["model"] = f"e5-tuned:{folder}"
    return report
