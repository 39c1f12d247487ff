"""Why does shortlist precision@K fall on new needs? Measured on bdci2019 dev with markets of new needs.

    python -m eval.benchmarks.triage_generalise [--folds 5] [--subsets 200] [--json]

Three questions, each answered with the zero-shot shortlist (nothing learned, so nothing can overfit):

1. **Noise**: how much does precision@K move between need sets of the same kind? Random halves of the dev
   needs (market = the half, pool = its judged results, K = its grade-3 count), ``--subsets`` times.
2. **Hubness**: do some results score high against every need? k-occurrence N_10(r) (how many needs put r in
   their top 10 over the corpus), its skew, and the precision of the shortlisted hubs.
3. **Comparability**: per-need normalisation gives every need's best candidate full strength, whether or not
   it has a strong answer. Variants of the pair strength, each pooled over folds split by need (market =
   the fold's needs, like a batch of new needs) and on random halves, with a paired test over needs against
   the shipped strength.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from eval.benchmarks.shortlist_bdci import DEFAULT_DATA, precision_at, precision_p_value, restricted_ranking
from eval.benchmarks.splits import pair_folds
from recommender.hybrid import HybridIndex
from recommender.pipeline import new_index
from recommender.records import Record, load_needs, load_results
from recommender.trec import read_qrels
from recommender.triage import market_pull, score_results
from recommender.triage.market import Candidate, pull_of, rank_candidates, rank_strengths

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
Scorer = Callable[[Sequence[Record]], dict[str, float]]
HUB_K = 10  # CSLS neighbours on each side
HUB_SHARE = 0.5  # share of the hub-corrected percentile in the strength (the rest: the rank strength)


def hub_corrected_strengths(
    candidates: dict[str, list[Candidate]], index: HybridIndex, needs: Sequence[Record], k: int = HUB_K,
    absolute: bool = False,
) -> None:
    """Strength comparable across needs and corrected for hubness (CSLS on the dense signal).

    CSLS (Lample et al. 2018): csls(n, r) = 2 cos(n, r) - mean cos of r to its k nearest needs of the market
    - mean cos of n to its k nearest results. The first correction sinks *hubs* (results close to every
    need); the second puts needs with generally high similarities on the scale of the others. Each pair's
    strength is its csls as a percentile among all candidate pairs of the market, so the best candidate of
    a need with no close answer does not get full strength; unless ``absolute``, that is blended half and
    half with the per-need rank strength. Without a dense signal the rank strength is kept. Measured, not
    shipped: it lowers precision@K on bdci2019 dev (TRIAGE.md), whose results are not hubs."""
    dense = next((sig for sig in index.signals.values() if hasattr(sig, "embedder")), None)
    rank_strengths(candidates)
    if dense is None or not candidates:
        return
    by_id = {n.id: n for n in needs}
    need_ids = [nid for nid, cands in candidates.items() if cands and nid in by_id]
    if not need_ids:
        return
    queries = dense.embed_queries([by_id[nid].as_query() for nid in need_ids])
    need_side = np.asarray([np.mean([s for _, s in hits]) if hits else 0.0
                            for hits in dense.ann.search(queries, k)])
    result_ids = sorted({c.result_id for nid in need_ids for c in candidates[nid]})
    present = set(dense.ann.present(result_ids))
    result_ids = [r for r in result_ids if r in present]
    column = {r: j for j, r in enumerate(result_ids)}
    result_side = np.zeros(len(result_ids))
    vectors = dense.ann.vectors(result_ids) if result_ids else np.zeros((0, queries.shape[1]))
    near = min(k, len(need_ids))
    for start in range(0, len(result_ids), 4096):  # results x needs in blocks: memory stays small
        sims = vectors[start:start + 4096] @ queries.T
        result_side[start:start + 4096] = -np.sort(-sims, axis=1)[:, :near].mean(axis=1)
    pairs = [(row, c) for row, nid in enumerate(need_ids) for c in candidates[nid] if c.result_id in column]
    if not pairs:
        return
    cols = np.asarray([column[c.result_id] for _, c in pairs])
    rows = np.asarray([row for row, _ in pairs])
    cos = np.einsum("ij,ij->i", queries[rows], vectors[cols])
    csls = 2 * cos - result_side[cols] - need_side[rows]
    percentile = (np.argsort(np.argsort(csls, kind="stable"), kind="stable") + 1) / len(csls)
    share = 0.0 if absolute else 1.0 - HUB_SHARE
    for (_, c), value in zip(pairs, percentile):
        c.strength = share * c.strength + (1 - share) * float(value)


def _max_only(candidates: Mapping[str, list[Candidate]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for cands in candidates.values():
        for c in cands:
            out[c.result_id] = max(out.get(c.result_id, 0.0), c.strength)
    return out


def _pull(candidates: Mapping[str, list[Candidate]]) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for cands in candidates.values():
        for c in cands:
            per.setdefault(c.result_id, []).append(c.strength)
    return {r: pull_of(v) for r, v in per.items()}


@app.command()
def main(
    data: Annotated[Path, typer.Option("--data", help="bdci2019 folder")] = DEFAULT_DATA,
    folds: Annotated[int, typer.Option("--folds", min=2)] = 5,
    subsets: Annotated[int, typer.Option("--subsets", min=0, help="random halves of the needs")] = 200,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Noise, hubness and comparability of the zero-shot shortlist on markets of new needs."""
    needs = [n for n in load_needs(data / "needs.dev.jsonl")]
    qrels = read_qrels(data / "qrels.dev.txt")
    needs = [n for n in needs if n.id in qrels]
    index = new_index("result")
    index.build(load_results(data / "results.jsonl"))
    by_id = {n.id: n for n in needs}
    strong_of = {q: {r for r, g in j.items() if g == 3} for q, j in qrels.items()}
    out: dict[str, object] = {}

    # -- hubness over the whole corpus ------------------------------------------------------------------
    top10 = rank_candidates(index, needs, depth=10, progress=False)
    occurrence: dict[str, int] = {}
    for cands in top10.values():
        for c in cands:
            occurrence[c.result_id] = occurrence.get(c.result_id, 0) + 1
    counts = np.asarray(list(occurrence.values()), dtype=float)
    full = np.concatenate([counts, np.zeros(len(index.records) - len(counts))])
    out["hubness"] = {
        "results_in_some_top10": len(counts), "n10_max": int(counts.max()),
        "n10_skew": round(float(((full - full.mean()) ** 3).mean() / full.std() ** 3), 2),
        "results_with_n10_ge3": int((counts >= 3).sum()),
        "share_of_top10_slots_taken_by_n10_ge3": round(float(counts[counts >= 3].sum() / counts.sum()), 3),
    }

    variants: dict[str, Scorer] = {
        "shipped": lambda market: {s.result_id: s.score for s in score_results(
            {r: index.records[r] for q in market for r in qrels[q.id]}, market_pull(index, market, progress=False))},
    }

    def variant(kind: str, combine: Callable[[Mapping[str, list[Candidate]]], dict[str, float]]) -> Scorer:
        def score(market: Sequence[Record]) -> dict[str, float]:
            candidates = rank_candidates(index, market, progress=False)
            if kind == "rank":
                rank_strengths(candidates)
            else:
                hub_corrected_strengths(candidates, index, market, absolute=kind == "csls_abs")
            return combine(candidates)
        return score

    variants["rank_max_only"] = variant("rank", _max_only)
    variants["csls"] = variant("csls", _pull)
    variants["csls_max_only"] = variant("csls", _max_only)
    variants["csls_abs"] = variant("csls_abs", _pull)
    variants["csls_abs_max_only"] = variant("csls_abs", _max_only)

    def measure(scorer: Scorer, market: Sequence[Record]) -> tuple[list[str], float, int]:
        pool = {r for n in market for r in qrels[n.id]}
        strong = {r for n in market for r in strong_of[n.id]}
        ranked = restricted_ranking(scorer(market), pool)
        return ranked, precision_at(ranked, strong, max(1, len(strong))), len(strong)

    # -- one market of all dev needs, and folds of new needs pooled -----------------------------------------
    groups = np.asarray([n.id for n in needs])
    fold_markets = [[by_id[q] for q in sorted(set(groups[test]))]
                    for _, test in pair_folds("need", groups, folds, seed)]
    all_strong = set().union(*strong_of.values())
    pool_all = {r for j in qrels.values() for r in j}
    k = len(all_strong)
    pooled_rankings: dict[str, list[str]] = {}
    table: dict[str, dict[str, float]] = {}
    for name, scorer in variants.items():
        _, all_market, _ = measure(scorer, needs)
        scores: dict[str, float] = {}
        per_fold = []
        for market in fold_markets:
            fold_scores = scorer(market)
            ranked, p, _ = measure(lambda m, s=fold_scores: s, market)
            per_fold.append(round(p, 4))
            scores.update({r: fold_scores.get(r, float("-inf")) for r in {r for n in market for r in qrels[n.id]}})
        pooled_rankings[name] = restricted_ranking(scores, pool_all)
        table[name] = {"market_all_needs": round(all_market, 4),
                       "folds_pooled": round(precision_at(pooled_rankings[name], all_strong, k), 4),
                       "fold_markets_mean": round(float(np.mean(per_fold)), 4), "per_fold": per_fold}
        typer.echo(f"{name}: {table[name]}", err=True)
    for name in variants:
        if name != "shipped":
            table[name]["p_folds_pooled_vs_shipped"] = round(
                precision_p_value(pooled_rankings["shipped"], pooled_rankings[name], qrels, k), 4)

    # -- random halves: the spread a new need set brings by itself ----------------------------------------
    rng = np.random.default_rng(seed)
    halves = [[needs[i] for i in sorted(rng.choice(len(needs), len(needs) // 2, replace=False))]
              for _ in range(subsets)]
    for name, scorer in variants.items():
        values = np.asarray([measure(scorer, half)[1] for half in halves]) if halves else np.zeros(1)
        table[name]["halves_mean"] = round(float(values.mean()), 4)
        table[name]["halves_std"] = round(float(values.std()), 4)
        table[name]["halves_p10"] = round(float(np.percentile(values, 10)), 4)
        table[name]["halves_min"] = round(float(values.min()), 4)
        if name == "shipped" and halves:
            ks = np.asarray([sum(len(strong_of[n.id]) for n in half) for half in halves])
            out["halves_k_mean_min_max"] = [round(float(ks.mean()), 1), int(ks.min()), int(ks.max())]
    out["variants"] = table
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(json.dumps(out, indent=1))


if __name__ == "__main__":
    app()
