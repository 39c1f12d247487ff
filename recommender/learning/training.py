"""Training the grader and the re-ranker from judged pairs (files, or feedback turned into judgements).

Both models are LightGBM, single-threaded and ``deterministic`` so that a seed fixes the model exactly.
Calibration of the grader uses out-of-fold predictions grouped by need, so it never sees a need's
pairs with a model trained on them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import GroupKFold
from tqdm.auto import tqdm

from recommender.errors import UserError
from recommender.hybrid import HybridIndex
from recommender.learning.cross_encoder import (
    CrossEncoder,
    CrossEncoderConfig,
    fit_cross_encoder,
    out_of_fold_cumulative,
)
from recommender.learning.features import CORPUS_DEPTH, PairFeaturizer
from recommender.learning.grader import Grader
from recommender.learning.ranker import CROSS_ENCODER_CANDIDATES, RERANK_CANDIDATES, Reranker, blend_scores
from recommender.records import Record, load_records

Qrels = Mapping[str, Mapping[str, int]]

GRADER_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 20,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
    "verbose": -1, "num_threads": 1, "deterministic": True, "force_row_wise": True,
}
GRADER_ROUNDS = 250
RANKER_PARAMS: dict[str, Any] = {
    "objective": "lambdarank", "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 100,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
    "lambdarank_truncation_level": 30, "verbose": -1, "num_threads": 1, "deterministic": True,
    "force_row_wise": True,
}
RANKER_ROUNDS = 100
BLEND_WEIGHTS = (0.0, 0.5, 1.0, 2.0)  # the model's weight against the hybrid order (0: hybrid only)
CALIBRATION_FOLDS = 3
CROSS_ENCODER_FOLDS = 5  # cross-encoders trained to give every judged pair an out-of-fold probability


class TrainingDataError(UserError, ValueError):
    """Judgements that cannot train a model (nothing matches the index, a single grade, ...)."""


def grade_score(true: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """The BDCI 2019 contest score: 1 / (1 + mean absolute error over levels)."""
    true, predicted = np.asarray(true, dtype=float), np.asarray(predicted, dtype=float)
    return float(1.0 / (1.0 + np.abs(true - predicted).mean())) if len(true) else 0.0


def judged_pairs(
    index: HybridIndex, needs: Sequence[Record], qrels: Qrels
) -> tuple[list[Record], list[str], list[int]]:
    """The (need, result id, grade) triples whose need text is known and whose result is indexed."""
    by_id = {n.id: n for n in needs}
    pair_needs, pair_ids, grades = [], [], []
    for need_id in sorted(qrels):
        need = by_id.get(need_id)
        if need is None:
            continue
        for result_id, grade in sorted(qrels[need_id].items()):
            if result_id in index.records:
                pair_needs.append(need)
                pair_ids.append(result_id)
                grades.append(int(grade))
    if not grades:
        raise TrainingDataError(
            "none of the judgements pairs a known need with an indexed result: check that the needs file and "
            "the judgements use the same ids, and that the results were indexed"
        )
    return pair_needs, pair_ids, grades


def _lgb_params(base: Mapping[str, Any], seed: int, rows: int, **extra: Any) -> dict[str, Any]:
    """Parameters with every seed fixed; leaves need fewer rows on small judgement sets (a few needs)."""
    leaf = max(2, min(int(base["min_data_in_leaf"]), rows // 20))
    return {**base, "seed": seed, "bagging_seed": seed, "feature_fraction_seed": seed, "data_random_seed": seed,
            "min_data_in_leaf": leaf, **extra}


def _fit_threshold_models(features: np.ndarray, grades: np.ndarray, levels: Sequence[int], seed: int) -> list:
    boosters = []
    for level in levels[1:]:
        data = lgb.Dataset(features, (grades >= level).astype(int), free_raw_data=False)
        boosters.append(lgb.train(_lgb_params(GRADER_PARAMS, seed, len(grades)), data, num_boost_round=GRADER_ROUNDS))
    return boosters


def fit_grader(
    features: np.ndarray, grades: Sequence[int], groups: Sequence[str], feature_names: Sequence[str],
    signals: Sequence[str], depth: int = CORPUS_DEPTH, seed: int = 0, levels: Sequence[int] | None = None,
) -> Grader:
    """A grader from a feature matrix: threshold models on all rows, isotonic calibration out of fold."""
    grades = np.asarray(grades, dtype=int)
    levels = sorted({int(g) for g in grades}) if levels is None else sorted(int(v) for v in levels)
    if len(levels) < 2:
        raise TrainingDataError(f"the judgements hold a single grade ({levels}): a grader needs at least two")
    groups = np.asarray(groups)
    calibration: list[dict[str, list[float]]] = [{"x": [], "y": []} for _ in levels[1:]]
    if len(set(groups)) >= CALIBRATION_FOLDS:
        out_of_fold = np.zeros((len(grades), len(levels) - 1))
        for train, held in GroupKFold(CALIBRATION_FOLDS).split(features, grades, groups):
            if len(set(grades[train])) < 2:
                continue
            for t, booster in enumerate(_fit_threshold_models(features[train], grades[train], levels, seed)):
                out_of_fold[held, t] = booster.predict(features[held], num_threads=1)
        for t, level in enumerate(levels[1:]):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(out_of_fold[:, t], (grades >= level).astype(float))
            calibration[t] = {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}
    boosters = _fit_threshold_models(features, grades, levels, seed)
    info = {"trained_pairs": int(len(grades)), "trained_needs": int(len(set(groups))), "seed": seed}
    return Grader(levels, boosters, calibration, feature_names, signals, depth, info)


def train_grader(
    index: HybridIndex, needs: Sequence[Record], qrels: Qrels, seed: int = 0,
    cross_encoder: CrossEncoderConfig | None = None, work: Path | None = None, progress: bool = True,
) -> Grader:
    """Learn to grade (need, result) pairs from judgements against the results in ``index``.

    ``cross_encoder``: also fine-tune the cross-encoder and stack it: its out-of-fold probabilities (folds
    split by need) become three more features, a final cross-encoder is trained on every pair, and a plain
    grader without them is kept beside it. ``work``: where its folds and epochs are checkpointed (resumable).
    """
    pair_needs, pair_ids, grades = judged_pairs(index, needs, qrels)
    featurizer = PairFeaturizer(index)
    features = featurizer.transform(pair_needs, pair_ids)
    groups = [n.id for n in pair_needs]
    plain = fit_grader(features, grades, groups, featurizer.names, featurizer.signals, featurizer.depth, seed)
    if cross_encoder is None:
        return plain
    results = [index.records[r] for r in pair_ids]
    stacked, _, model = _stack_cross_encoder(pair_needs, results, grades, plain.levels, cross_encoder, work,
                                             progress)
    grader = fit_grader(np.hstack([features, stacked]), grades, groups, featurizer.names + model.names,
                        featurizer.signals, featurizer.depth, seed, plain.levels)
    return Grader(grader.levels, grader.boosters, grader.calibration, grader.feature_names, grader.signals,
                  grader.depth, {**grader.info, "cross_encoder_folds": CROSS_ENCODER_FOLDS}, model, plain)


def _stack_cross_encoder(
    needs: Sequence[Record], results: Sequence[Record], grades: Sequence[int], levels: Sequence[int],
    config: CrossEncoderConfig, work: Path | None, progress: bool,
    extra_pairs: Callable[[list[str]], tuple[list[Record], list[Record]]] | None = None,
) -> tuple[np.ndarray, list[np.ndarray], CrossEncoder]:
    """Out-of-fold cross-encoder probabilities of the pairs (folds by need), and one trained on all of them.

    ``extra_pairs``: given a fold's held need ids, more pairs that fold's cross-encoder scores (the held needs'
    candidates, for the re-ranker); their probabilities are returned per fold."""
    groups = np.asarray([n.id for n in needs])
    if len(set(groups)) < 2:
        raise TrainingDataError("a cross-encoder needs judgements of at least two needs (its folds split by need)")
    folds = list(GroupKFold(min(CROSS_ENCODER_FOLDS, len(set(groups)))).split(groups, groups=groups))
    extra = [extra_pairs(sorted(set(groups[held]))) for _, held in folds] if extra_pairs is not None else ()
    stacked, extras = out_of_fold_cumulative(needs, results, grades, folds, levels, config, work, progress, extra)
    final = fit_cross_encoder(needs, results, grades, levels, config,
                              work / "final" if work is not None else None, progress, desc="cross-encoder (all pairs)")
    return stacked, extras, final


def candidate_features(
    featurizer: PairFeaturizer, needs: Sequence[Record], qrels: Qrels, candidates: int = RERANK_CANDIDATES,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Features of each need's hybrid top ``candidates``, in hybrid order; unjudged candidates count as 0.

    Returns (features, labels, need id per row, result id per row), rows grouped by need.
    """
    index = featurizer.index
    blocks, labels, groups, ids_out = [], [], [], []
    for need in tqdm(needs, desc="candidate features", unit="need", disable=not progress or len(needs) < 20):
        judged = qrels.get(need.id, {})
        ids = [m.id for m in index.search([need.as_query()], candidates, explain=False)[0]]
        if not ids:
            continue
        blocks.append(featurizer.transform([need] * len(ids), ids))
        labels += [int(judged.get(r, 0)) for r in ids]
        groups += [need.id] * len(ids)
        ids_out += ids
    if not blocks:
        raise TrainingDataError("no candidates to learn from: are the needs and results empty?")
    return np.vstack(blocks), np.asarray(labels, dtype=int), groups, ids_out


def _fit_lambdarank(features: np.ndarray, relevant: np.ndarray, sizes: list[int], seed: int) -> lgb.Booster:
    params = _lgb_params(RANKER_PARAMS, seed, len(relevant))
    return lgb.train(params, lgb.Dataset(features, relevant, group=sizes), num_boost_round=RANKER_ROUNDS)


def _choose_blend_weight(
    features: np.ndarray, labels: np.ndarray, groups: Sequence[str], relevant: np.ndarray, seed: int
) -> tuple[float, dict[str, float]]:
    """The model's weight in the fused order with the best out-of-fold nDCG@10 on the training needs."""
    from recommender.metrics import evaluate

    groups = np.asarray(groups)
    names = list(dict.fromkeys(groups))
    if len(names) < CALIBRATION_FOLDS:
        return 1.0, {}
    qrels = {q: {} for q in names}
    oof = np.zeros(len(labels))
    for train, held in GroupKFold(CALIBRATION_FOLDS).split(features, labels, groups):
        sizes = [len(list(g)) for _, g in groupby(groups[train])]
        if relevant[train].max(initial=0) <= 0:
            continue
        oof[held] = _fit_lambdarank(features[train], relevant[train], sizes, seed).predict(features[held],
                                                                                          num_threads=1)
    for row, (q, label) in enumerate(zip(groups, labels)):
        if label > 0:
            qrels[q][f"row{row}"] = int(label)
    figures: dict[str, float] = {}
    for weight in BLEND_WEIGHTS:
        run = {}
        for q in names:
            rows = np.flatnonzero(groups == q)
            run[q] = {f"row{r}": float(s) for r, s in zip(rows, blend_scores(oof[rows], weight))}
        figures[str(weight)] = evaluate(qrels, run, 1, ["ndcg@10"])["ndcg@10"]
    best = max(BLEND_WEIGHTS, key=lambda w: (round(figures[str(w)], 6), -w))  # ties: the simpler order
    return best, figures


def fit_ranker(
    features: np.ndarray, labels: Sequence[int], groups: Sequence[str], feature_names: Sequence[str],
    signals: Sequence[str], depth: int = CORPUS_DEPTH, candidates: int = RERANK_CANDIDATES, seed: int = 0,
) -> Reranker:
    """A LambdaRank model over candidate rows grouped by need, in hybrid order (one need's rows contiguous).

    The model learns which candidates are relevant (the upper half of the grade scale, e.g. 2-3 of 0-3:
    weak matches as positives blurred the order on bdci2019); its weight in the fused order is chosen
    out of fold on the training needs, 0 if it does not beat the hybrid order.
    """
    labels = np.asarray(labels, dtype=int)
    if labels.max(initial=0) <= 0:
        raise TrainingDataError("the judgements hold no relevant pair (grade > 0): nothing to learn to rank")
    relevant_from = max(1, (int(labels.max()) + 1) // 2)
    relevant = (labels >= relevant_from).astype(int)
    weight, figures = _choose_blend_weight(features, labels, groups, relevant, seed)
    sizes = [len(list(g)) for _, g in groupby(groups)]
    booster = _fit_lambdarank(features, relevant, sizes, seed)
    info = {"trained_rows": int(len(labels)), "trained_needs": len(sizes), "seed": seed,
            "relevant_from": relevant_from, "blend_ndcg@10_out_of_fold": figures}
    return Reranker(booster, feature_names, signals, depth, candidates, weight, info)


def train_reranker(
    index: HybridIndex, needs: Sequence[Record], qrels: Qrels, seed: int = 0, candidates: int = RERANK_CANDIDATES,
    cross_encoder: CrossEncoderConfig | None = None, work: Path | None = None, progress: bool = True,
    cross_encoder_candidates: int = CROSS_ENCODER_CANDIDATES,
) -> Reranker:
    """Learn to re-rank the hybrid's top candidates from judgements (unjudged candidates count as 0).

    ``cross_encoder``: also fine-tune the cross-encoder on the judged pairs; each need's top
    ``cross_encoder_candidates`` get its probabilities as features, out of fold (folds split by need: a
    candidate is scored by a cross-encoder that never saw its need), and a final one, trained on every
    judged pair, scores new needs' candidates."""
    featurizer = PairFeaturizer(index)
    judged = [n for n in needs if n.id in qrels]
    if not judged:
        raise TrainingDataError("none of the training needs has a judgement: check the ids of needs and qrels")
    features, labels, groups, ids = candidate_features(featurizer, judged, qrels, candidates, progress)
    if cross_encoder is None:
        return fit_ranker(features, labels, groups, featurizer.names, featurizer.signals, featurizer.depth,
                          candidates, seed)
    pair_needs, pair_ids, grades = judged_pairs(index, judged, qrels)
    rows_of: dict[str, list[int]] = {}
    for row, need_id in enumerate(groups):
        rows_of.setdefault(need_id, []).append(row)
    by_id = {n.id: n for n in judged}
    scored: list[list[int]] = []  # per fold, the candidate rows its cross-encoder scores

    def held_candidates(held_needs: list[str]) -> tuple[list[Record], list[Record]]:
        rows = [r for q in held_needs for r in rows_of.get(q, [])[:cross_encoder_candidates]]
        scored.append(rows)
        return [by_id[groups[r]] for r in rows], [index.records[ids[r]] for r in rows]

    results = [index.records[r] for r in pair_ids]
    levels = sorted({int(g) for g in grades})
    _, values, final = _stack_cross_encoder(pair_needs, results, grades, levels, cross_encoder, work, progress,
                                            held_candidates)
    columns = np.full((len(labels), len(levels) - 1), np.nan)
    for rows, fold_values in zip(scored, values):
        if rows:
            columns[rows] = fold_values
    ranker = fit_ranker(np.hstack([features, columns]), labels, groups, featurizer.names + final.names,
                        featurizer.signals, featurizer.depth, candidates, seed)
    ranker.cross_encoder, ranker.cross_encoder_candidates = final, cross_encoder_candidates
    return ranker


def train_reranker_from_files(
    index: HybridIndex, train_needs_path: Path, train_qrels_path: Path, results: list[Record],
    cross_encoder: CrossEncoderConfig | None = None, work: Path | None = None,
) -> Reranker:
    """What ``techmatch eval --train-needs --train-qrels [--cross-encoder]`` uses: read the files, train."""
    from recommender.trec import read_qrels

    needs, _ = load_records(train_needs_path, "need")
    return train_reranker(index, needs, read_qrels(train_qrels_path), cross_encoder=cross_encoder, work=work)
