"""The quality tables again, raw, collapsed (duplicate groups as one item) and condensed (unjudged removed).

    python -m eval.benchmarks.collapsed_tables [--candidates 300] [--folds 5] [--json F]

One index of bdci2019's 7,324 results (the default pipeline: e5-small + BM25 + char), then:

* **zero-shot signals**: each signal alone (its top 1,000) and the default hybrid (RRF, weights 1, k 60, each
  signal's top 200), on the 91 dev needs with a grade >= 2 judgement;
* **first-stage mix tuned by need**: RRF weights of the three signals and of three query variants (BM25 and char
  on the need's title alone, dense on its full text) chosen on four fifths of the needs by the
  collapsed nDCG@10 + collapsed recall@100, scored on the fifth (GroupKFold, the split by need); the grid's
  best on all needs is printed too, marked as fitted on the needs it is scored on;
* **query expansion** (pseudo-relevance feedback): BM25 and char re-searched with the titles of the default's top 3
  added to the need's text, fused with or instead of the plain lexical lists;
* **learned** (``learning_bdci``'s folds, both splits): the hybrid's candidates against the re-ranked ones.

Every row has raw, collapsed and condensed figures side by side (``recommender.metrics``: ``collapse``,
``judgement_figures``), with the count of top-10 lists holding two members of one group. The last line of
standard output is one JSON object with every figure.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from sklearn.model_selection import GroupKFold

from eval.benchmarks.learning_bdci import DATA, _cross_validate, prepare
from recommender.fusion import reciprocal_rank_fusion
from recommender.metrics import collapse, evaluable_queries, evaluate, judgement_figures, per_query_scores
from recommender.signal import Texts, as_texts
from recommender.trec import rank_documents

MIN_GRADE = 2
PRF_TOP = 3  # feedback titles added to a query
DEPTH = 100  # what every figure sees of a list (techmatch eval's depth)
KEYS = ("ndcg@10", "recall@100")
WEIGHTS = (0.5, 1.0, 2.0)  # the three signals' weights tried
EXTRA_WEIGHTS = (0.0, 1.0)  # the query variants' (title-only lexical queries, full-text dense query)
RRF_KS = (60,)  # k 20 and depth 200 never won in a first grid (weights 0-2, k 20/60, depth 200/1000)
DEPTHS = (1000,)

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def repeats(run: Run, group_of: dict[str, str]) -> int:
    """Needs whose top 10 holds two members of one duplicate group."""
    out = 0
    for docs in run.values():
        top = [group_of.get(d, d) for d, _ in rank_documents(docs)[:10]]
        out += len(set(top)) < len(top)
    return out


def top(run: Run, depth: int = DEPTH) -> Run:
    """Each need's first ``depth`` items (as ``techmatch eval`` ranks them: the figures depend on the depth, the
    condensed ones most, as a deeper list brings more judged results up)."""
    return {q: dict(rank_documents(docs)[:depth]) for q, docs in run.items()}


def figures(qrels: Qrels, run: Run, group_of: dict[str, str]) -> dict[str, float]:
    """Raw (the top 100 results) and collapsed (the top 100 groups) nDCG@10, recall@100, judged@10 and condensed
    nDCG@10, and the top-10 repeats."""
    out: dict[str, float] = {}
    grouped_qrels, grouped_run = collapse(qrels, run, group_of)
    run, grouped_run = top(run), top(grouped_run)
    for prefix, (q, r) in (("raw", (qrels, run)), ("collapsed", (grouped_qrels, grouped_run))):
        out |= {f"{prefix} {k}": v for k, v in evaluate(q, r, MIN_GRADE, list(KEYS)).items()}
        out |= {f"{prefix} {k}": v for k, v in judgement_figures(q, r, MIN_GRADE).items()}
    out["top-10 repeats"] = repeats(run, group_of)
    return {k: round(float(v), 4) for k, v in out.items()}


def paired(qrels: Qrels, a: Run, b: Run, group_of: dict[str, str]) -> dict[str, float]:
    """Paired t-test p-values over the needs, collapsed nDCG@10 and recall@100 of run b against run a."""
    from scipy.stats import ttest_rel

    grouped_qrels = collapse(qrels, {}, group_of)[0]
    _, x = per_query_scores(grouped_qrels, top(collapse(qrels, a, group_of)[1]), MIN_GRADE, list(KEYS))
    _, y = per_query_scores(grouped_qrels, top(collapse(qrels, b, group_of)[1]), MIN_GRADE, list(KEYS))
    return {k: round(float(ttest_rel(y[k], x[k]).pvalue), 4) for k in KEYS}


def fuse(hits: dict[str, dict[str, list]], weights: dict[str, float], k: int, depth: int) -> Run:
    """The RRF run of each need's signal lists, each cut at ``depth``, kept to its top 1,000 (collapsing must
    still find 100 groups)."""
    run: Run = {}
    for need, lists in hits.items():
        fused = reciprocal_rank_fusion({s: h[:depth] for s, h in lists.items()}, weights, k)[:1000]
        run[need] = {d: float(len(fused) - i) for i, (d, _) in enumerate(fused)}
    return run


def tuned_first_stage(hits: dict[str, dict[str, list]], qrels: Qrels, group_of: dict[str, str],
                      folds: int) -> tuple[Run, dict, list[dict]]:
    """Out-of-fold run of the mix chosen on the other needs, the grid's best on all needs, each fold's choice."""
    signals = sorted(next(iter(hits.values())))
    choices = [EXTRA_WEIGHTS if ":" in s else WEIGHTS for s in signals]
    grid = [(dict(zip(signals, w)), k, depth) for w in itertools.product(*choices)
            for k in RRF_KS for depth in DEPTHS]
    grouped_qrels = collapse(qrels, {}, group_of)[0]
    needs = evaluable_queries(qrels, MIN_GRADE)
    scores = np.zeros((len(grid), len(needs)))
    runs = []
    for i, (weights, k, depth) in enumerate(grid):
        run = fuse({n: hits[n] for n in needs}, weights, k, depth)
        runs.append(run)
        _, per_need = per_query_scores(grouped_qrels, top(collapse(qrels, run, group_of)[1]), MIN_GRADE, list(KEYS))
        scores[i] = per_need["ndcg@10"] + per_need["recall@100"]
    out_of_fold: Run = {}
    chosen = []
    for train, test in GroupKFold(folds).split(needs, groups=needs):
        best = int(scores[:, train].mean(1).argmax())
        weights, k, depth = grid[best]
        chosen.append({"weights": weights, "rrf_k": k, "depth": depth})
        out_of_fold |= {needs[j]: runs[best][needs[j]] for j in test}
    best = int(scores.mean(1).argmax())
    return out_of_fold, {"weights": grid[best][0], "rrf_k": grid[best][1], "depth": grid[best][2],
                         "run": runs[best]}, chosen


def main(
    data: Annotated[Path, typer.Option(help="bdci2019 folder")] = DATA,
    candidates: Annotated[int, typer.Option(help="hybrid candidates the re-ranker re-orders")] = 300,
    folds: Annotated[int, typer.Option(help="folds of every split")] = 5,
    seed: Annotated[int, typer.Option()] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the figures here")] = None,
) -> None:
    """Zero-shot, tuned-mix and learned rows with raw, collapsed and condensed figures."""
    if not data.exists():
        raise typer.BadParameter(f"{data} not found (the shared bdci2019 data)")
    start = time.perf_counter()
    world = prepare(data, candidates)
    index = world.featurizer.index
    group_of = index.duplicates.mapping()
    qrels = world.qrels
    wanted = evaluable_queries(qrels, MIN_GRADE)
    needs = {n.id: n for n in world.needs}
    queries = [as_texts(needs[q].as_query()) for q in wanted]
    hits = {q: {} for q in wanted}
    for name, signal in index.signals.items():
        for q, found in zip(wanted, signal.search(queries, 1000)):
            hits[q][name] = found
    variants = {"bm25:title": ("bm25", lambda n: Texts(n.title)), "char:title": ("char", lambda n: Texts(n.title)),
                "dense:full": ("dense", lambda n: Texts(n.query_text))}
    for variant, (name, query) in variants.items():
        for q, found in zip(wanted, index.signals[name].search([query(needs[q]) for q in wanted], 1000)):
            hits[q][variant] = found
    table: dict[str, dict] = {"zero-shot": {}}
    for name in hits[wanted[0]]:
        run = {q: {d: float(1000 - i) for i, (d, _) in enumerate(hits[q][name])} for q in wanted}
        table["zero-shot"][f"{name} alone"] = figures(qrels, run, group_of)
    default = fuse({q: {s: h[s] for s in index.signals} for q, h in hits.items()}, index.weights, index.rrf_k,
                   index.depth)
    default = {q: dict(rank_documents(docs)) for q, docs in default.items()}
    table["zero-shot"]["hybrid (default: RRF k 60, top 200 each, weights 1)"] = figures(qrels, default, group_of)
    # pseudo-relevance feedback (query expansion): the need's text plus the titles of the default's top 3, for the
    # lexical signals; fused with the plain lists (each weight 1) and in place of them
    feedback = {q: "。".join(index.records[d].title for d in list(default[q])[:PRF_TOP]) for q in wanted}
    expanded = [Texts(needs[q].query_text + "。" + feedback[q]) for q in wanted]
    prf = {q: {} for q in wanted}
    for name in ("bm25", "char"):
        for q, found in zip(wanted, index.signals[name].search(expanded, 1000)):
            prf[q][f"{name}:prf"] = found
    plain = {q: {s: h[s] for s in index.signals} for q, h in hits.items()}
    both = fuse({q: plain[q] | prf[q] for q in wanted}, {}, index.rrf_k, index.depth)
    instead = fuse({q: {"dense": plain[q]["dense"]} | prf[q] for q in wanted}, {}, index.rrf_k, index.depth)
    table["query expansion"] = {
        f"hybrid + BM25 and char on the expanded query (top {PRF_TOP} titles)": figures(qrels, both, group_of),
        "dense + BM25 and char on the expanded query only": figures(qrels, instead, group_of),
    }
    table["p, expanded-only vs default, collapsed (paired t-test)"] = paired(qrels, default, instead, group_of)
    oof, best, chosen = tuned_first_stage(hits, qrels, group_of, folds)
    table["tuned mix"] = {
        "chosen on the other needs (out of fold, by need)": figures(qrels, oof, group_of),
        f"grid best on all needs (fitted to them): {best['weights']}, k {best['rrf_k']}, depth {best['depth']}":
            figures(qrels, best["run"], group_of),
    }
    table["tuned mix choices"] = chosen
    for split in ("need", "pair"):
        result = _cross_validate(split, folds, seed, candidates, MIN_GRADE, world.featurizer, world.judged_x,
                                 world.judged_y, world.groups, world.pair_ids, world.top, set(wanted))
        relevant = result["relevant"]
        table[f"learned, split by {split}"] = {
            "hybrid candidates": figures(relevant, result["runs"]["hybrid"], group_of),
            "re-ranked (LambdaRank blend)": figures(relevant, result["runs"]["reranked"], group_of),
        }
    table["seconds"] = round(time.perf_counter() - start, 1)
    table["duplicate groups"] = len(index.duplicates.groups())
    text = json.dumps(table, ensure_ascii=False)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


if __name__ == "__main__":
    typer.run(main)
