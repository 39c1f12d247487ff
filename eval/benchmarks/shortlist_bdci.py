"""Shortlist precision on bdci2019 dev: are the results a need graded 3 (strong) at the top of the shortlist?

    python -m eval.benchmarks.shortlist_bdci [--data ../shared/data/bdci2019] [--folds 5] [--json]

A result counts as transferable when the one need it was judged against graded it 3. The ranking is
restricted to the results judged for dev needs (the only ones whose label is known) and cut at K = the
number of grade-3 results among them. Reported: random (K / pool), the best raw need-similarity alone
(max fused score over needs, no per-need normalisation), the zero-shot shortlist (the shipped command
without judgements), and, with --folds > 1, the shortlist whose strengths come from a grader trained on
judgements, cross-validated by need: the dev needs are split into folds, a grader is trained on the other
folds' needs and judgements, the held-out fold's needs form the market that scores the held-out fold's
judged results, and the scores of all folds are pooled before cutting at K. No need is ever in both
training and evaluation, and the held-out half of the data set is never read.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Annotated

import typer

from recommender.pipeline import new_index
from recommender.records import load_needs, load_results
from recommender.trec import read_qrels
from recommender.triage import market_pull, score_results
from recommender.triage.market import rank_candidates

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "bdci2019"


def precision_at(ranked: list[str], relevant: set[str], k: int) -> float:
    return sum(1 for rid in ranked[:k] if rid in relevant) / k


def restricted_ranking(scores: dict[str, float], pool: set[str]) -> list[str]:
    """Pool results by score, best first; unscored ones last (ties by id: deterministic)."""
    return sorted(pool, key=lambda rid: (-scores.get(rid, float("-inf")), rid))


@app.command()
def main(
    data: Annotated[Path, typer.Option("--data", help="bdci2019 folder")] = DEFAULT_DATA,
    folds: Annotated[int, typer.Option("--folds", min=0, help="need folds for the learned variant (0: skip)")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Precision at K of the shortlist over the judged dev results (grade 3 = transferable)."""
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
        from recommender.learning.training import train_grader

        order = sorted(n.id for n in needs)
        random.Random(seed).shuffle(order)
        fold_of = {nid: i % folds for i, nid in enumerate(order)}
        learned: dict[str, float] = {}
        per_fold_zero: dict[str, float] = {}
        start = time.perf_counter()
        for fold in range(folds):
            train = [n for n in needs if fold_of[n.id] != fold]
            held = [n for n in needs if fold_of[n.id] == fold]
            grader = train_grader(index, train, {n.id: qrels[n.id] for n in train}, seed=seed)
            held_pool = {rid for n in held for rid in qrels[n.id]}
            held_records = {rid: records[rid] for rid in held_pool if rid in records}
            for s in score_results(held_records, market_pull(index, held, grader=grader, progress=False)):
                learned[s.result_id] = s.score
            for s in score_results(held_records, market_pull(index, held, progress=False)):
                per_fold_zero[s.result_id] = s.score
            typer.echo(f"fold {fold + 1}/{folds} done", err=True)
        figures[f"zero_shot_fold_markets_{folds}"] = round(
            precision_at(restricted_ranking(per_fold_zero, pool), strong, k), 4)
        figures[f"learned_cv{folds}"] = round(precision_at(restricted_ranking(learned, pool), strong, k), 4)
        figures["learned_seconds"] = round(time.perf_counter() - start, 1)
    figures["index_seconds"] = round(index_seconds, 1)
    if as_json:
        typer.echo(json.dumps(figures))
    else:
        for key, value in figures.items():
            typer.echo(f"{key:>28}  {value}")


if __name__ == "__main__":
    app()
