"""Shortlist precision on bdci2019 dev: are the results a need graded 3 (strong) at the top of the shortlist?

    python -m eval.benchmarks.shortlist_bdci [--data ../shared/data/bdci2019] [--folds 5] [--split need] [--json]

A result counts as transferable when the one need it was judged against graded it 3. The ranking is
restricted to the results judged for dev needs (the only ones whose label is known) and cut at K = the
number of grade-3 results among them. Reported: random (K / pool), the best raw need-similarity alone
(max fused score over needs, no per-need normalisation), the zero-shot shortlist (the shipped command
without judgements), and, with --folds > 1, the shortlist whose strengths come from a grader trained on
judgements, cross-validated two ways (``eval/benchmarks/splits.py``). Split by need (new needs): a grader is
trained on the other folds' needs, the held-out fold's needs form the market that scores the held-out
fold's judged results; no need is ever in both training and evaluation. Split by pair (seen needs): a
grader is trained on the other folds' pairs, all needs form the market, the held-out pairs' results are
scored. The scores of all folds are pooled before cutting at K; each learned figure is given beside the
zero-shot shortlist of the same markets, with a paired test over needs. The held-out half of the data set
is never read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from eval.benchmarks.splits import SPLITS
from recommender.pipeline import new_index
from recommender.records import load_needs, load_results
from recommender.trec import read_qrels
from recommender.triage import market_pull, score_results
from recommender.triage.market import rank_candidates

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "bdci2019"


def precision_at(ranked: list[str], relevant: set[str], k: int) -> float:
    return sum(1 for rid in ranked[:k] if rid in relevant) / k


def strong_qrels(qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Per need, its grade-3 (transferable) results: the unit a shortlist's precision decomposes into."""
    return {q: {r: 1 for r, g in judged.items() if g == 3} for q, judged in qrels.items()}


def shortlist_runs(ranked: list[str], qrels: Mapping[str, Mapping[str, int]], k: int) -> dict[str, dict[str, float]]:
    """The shortlist's top ``k`` as one run per need: the results judged for that need, in shortlist order.

    precision@k = sum over needs of hits@k (that need's strong results in the top k) / k, so a paired test of
    hits@k over needs (``eval.compare``) is a paired test of precision@k with the need as the unit (needs,
    not results, are what the folds sample)."""
    owner = {r: q for q, judged in qrels.items() for r in judged}
    runs: dict[str, dict[str, float]] = {q: {} for q in qrels}
    for position, rid in enumerate(ranked[:k]):
        if rid in owner:
            runs[owner[rid]][rid] = float(k - position)
    return runs


def precision_p_value(ranked_a: list[str], ranked_b: list[str], qrels: Mapping[str, Mapping[str, int]],
                      k: int) -> float:
    """Paired t-test over needs of two shortlists' precision@k (each need's hits@k; see ``shortlist_runs``)."""
    from eval.compare import compare_runs

    strong = {q: j for q, j in strong_qrels(qrels).items() if j}
    report = compare_runs(strong, {"a": shortlist_runs(ranked_a, qrels, k), "b": shortlist_runs(ranked_b, qrels, k)},
                          1, [f"hits@{k}"])
    return report.p_value("a", "b", f"hits@{k}")


def restricted_ranking(scores: dict[str, float], pool: set[str]) -> list[str]:
    """Pool results by score, best first; unscored ones last (ties by id: deterministic)."""
    return sorted(pool, key=lambda rid: (-scores.get(rid, float("-inf")), rid))


@app.command()
def main(
    data: Annotated[Path, typer.Option("--data", help="bdci2019 folder")] = DEFAULT_DATA,
    folds: Annotated[int, typer.Option("--folds", min=0, help="need folds for the learned variant (0: skip)")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="model seed and the shuffle of the split by pair")] = 0,
    split: Annotated[list[str] | None, typer.Option("--split", help="need or pair; default both")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Precision at K of the shortlist over the judged dev results (grade 3 = transferable)."""
    splits = tuple(dict.fromkeys(split or SPLITS))
    if set(splits) - set(SPLITS):
        raise typer.BadParameter(f"unknown split in {list(splits)}: use {', '.join(SPLITS)}")
    needs = load_needs(data / "needs.dev.jsonl")
    results = load_results(data / "results.jsonl")
    qrels = read_qrels(data / "qrels.dev.txt")
    needs = [n for n in needs if n.id in qrels]
    pool = {rid for judged in qrels.values() for rid in judged}
    strong = {rid for judged in qrels.values() for rid, grade in judged.items() if grade == 3}
    k = len(strong)

    start = time.perf_counter()
    index = new_index("result")
    index.build(results)
    index_seconds = time.perf_counter() - start
    records = {rid: index.records[rid] for rid in pool if rid in index.records}

    figures: dict[str, object] = {"needs": len(needs), "pool": len(pool), "k": k, "random": round(k / len(pool), 4)}

    candidates = rank_candidates(index, needs, progress=False)
    raw: dict[str, float] = {}
    for cands in candidates.values():
        for c in cands:
            raw[c.result_id] = max(raw.get(c.result_id, 0.0), c.fused)
    figures["best_need_similarity"] = round(precision_at(restricted_ranking(raw, pool), strong, k), 4)

    start = time.perf_counter()
    market = market_pull(index, needs, progress=False)
    zero_shot = {s.result_id: s.score for s in score_results(records, market)}
    figures["zero_shot"] = round(precision_at(restricted_ranking(zero_shot, pool), strong, k), 4)
    figures["zero_shot_seconds"] = round(time.perf_counter() - start, 1)

    if folds > 1:
        from eval.benchmarks.splits import fold_qrels, pair_folds
        from recommender.learning.features import PairFeaturizer
        from recommender.learning.training import fit_grader, judged_pairs

        featurizer = PairFeaturizer(index)
        pair_needs, pair_ids, grades = judged_pairs(index, needs, qrels)
        judged_x, judged_y = featurizer.transform(pair_needs, pair_ids), np.asarray(grades)
        groups = np.asarray([n.id for n in pair_needs])
        by_id = {n.id: n for n in needs}
        rankings: dict[str, list[str]] = {"zero_shot": restricted_ranking(zero_shot, pool)}
        for split in splits:
            start = time.perf_counter()
            learned: dict[str, float] = {}
            before: dict[str, float] = {}  # the learned blend before issue 12 (per-need relative P(grade 3))
            reference: dict[str, float] = {}
            for fold, (train, test) in enumerate(pair_folds(split, groups, folds, seed), start=1):
                grader = fit_grader(judged_x[train], judged_y[train], groups[train], featurizer.names,
                                    featurizer.signals, featurizer.depth, seed)
                held_pool = {r for judged in fold_qrels(groups, pair_ids, judged_y, test).values() for r in judged}
                held_records = {rid: records[rid] for rid in held_pool if rid in records}
                # split by need the market is the held-out needs (new needs only); split by pair, every need
                market_needs = sorted(set(groups[test])) if split == "need" else sorted(by_id)
                market_needs = [by_id[q] for q in market_needs]
                for blend, scores in (("rank_and_market", learned), ("per_need", before)):
                    market = market_pull(index, market_needs, grader=grader, progress=False, learned_blend=blend)
                    scores.update({sr.result_id: sr.score for sr in score_results(held_records, market)})
                for sr in score_results(held_records, market_pull(index, market_needs, progress=False)):
                    reference[sr.result_id] = sr.score
                typer.echo(f"{split}: fold {fold}/{folds} done", err=True)
            rankings[f"{split}_zero_shot"] = restricted_ranking(reference, pool)
            rankings[f"{split}_learned"] = restricted_ranking(learned, pool)
            rankings[f"{split}_learned_per_need"] = restricted_ranking(before, pool)
            for name in ("zero_shot", "learned_per_need", "learned"):
                figures[f"{split}_{name}"] = round(precision_at(rankings[f"{split}_{name}"], strong, k), 4)
            for base in ("zero_shot", "learned_per_need"):
                figures[f"{split}_p_learned_vs_{base}"] = round(precision_p_value(
                    rankings[f"{split}_{base}"], rankings[f"{split}_learned"], qrels, k), 4)
            figures[f"{split}_seconds"] = round(time.perf_counter() - start, 1)
    figures["index_seconds"] = round(index_seconds, 1)
    if as_json:
        typer.echo(json.dumps(figures))
    else:
        for key, value in figures.items():
            typer.echo(f"{key:>28}  {value}")


if __name__ == "__main__":
    app()
