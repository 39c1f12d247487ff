"""The two rows ``collapsed_tables`` lacked: the static word-vector signal and the contrastively tuned encoder.

    python -m eval.benchmarks.collapsed_extra [--static-model F] [--split need --split pair] [--skip-static]
                                              [--skip-tuned] [--json F]

* **static signal** (zero-shot): ``static`` alone (its top 1,000) and fused with the default's three signals at
  weight 1 and 0.5 (RRF k 60, each list's top 200), against the default hybrid, on the 91 dev needs. Needs a
  model built by ``techmatch distil-static`` (``--static-model``).
* **tuned dense encoder in the hybrid**: ``contrastive_bdci``'s folds and settings (top 2 layers of e5-small,
  4 epochs, batch 32, lr 5e-5, one hard negative, seed 0), trained out of fold on the training part's
  judgements; the hybrid with the base and with the fold's tuned dense signal ranks the held needs (its top 300,
  each signal's top 300 fused, as the learned rows' candidates; split by pair: a need's results judged in
  training left out, query ``need#fold``).

Figures as ``collapsed_tables``: raw, collapsed and condensed side by side, paired t-test p-values of collapsed
nDCG@10 and recall@100 against the default. The last line of standard output is one JSON object with every figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from eval.benchmarks.collapsed_tables import MIN_GRADE, figures, fuse, paired
from eval.benchmarks.learning_bdci import DATA
from eval.benchmarks.splits import SPLITS, fold_qrels, pair_folds
from recommender.metrics import evaluable_queries
from recommender.signal import as_texts
from recommender.trec import rank_documents

DEPTH = 1000  # results kept of each signal's list (collapsing must still find 100 groups)
CANDIDATES = 300  # the tuned-encoder hybrids' length: as the learned rows' candidates (fusion of each top 300)


def _fail(message: str) -> NoReturn:
    """One clear line and exit 2 (bad input), as the project's commands answer."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def static_rows(data: Path, static_model: Path) -> dict:
    """Static alone and in the hybrid (weights 1 and 0.5) against the default, zero-shot."""
    from recommender.pipeline import new_index
    from recommender.records import load_records
    from recommender.settings import PipelineSettings
    from recommender.trec import read_qrels

    settings = PipelineSettings(signals=["dense", "bm25", "char", "static"], static_model=static_model)
    index = new_index("result", settings)
    index.build(load_records(data / "results.jsonl", "result")[0])
    group_of = index.duplicates.mapping()
    qrels = read_qrels(data / "qrels.dev.txt")
    needs = {n.id: n for n in load_records(data / "needs.dev.jsonl", "need")[0]}
    wanted = evaluable_queries(qrels, MIN_GRADE)
    queries = [as_texts(needs[q].as_query()) for q in wanted]
    hits: dict[str, dict[str, list]] = {q: {} for q in wanted}
    for name, signal in index.signals.items():
        for q, found in zip(wanted, signal.search(queries, DEPTH)):
            hits[q][name] = found
    plain = ("dense", "bm25", "char")

    def hybrid(weights: dict[str, float]) -> dict:
        run = fuse({q: {s: h[s] for s in weights} for q, h in hits.items()}, weights, index.rrf_k, index.depth)
        return {q: dict(rank_documents(docs)) for q, docs in run.items()}

    default = hybrid(dict.fromkeys(plain, 1.0))
    alone = {q: {d: float(DEPTH - i) for i, (d, _) in enumerate(hits[q]["static"])} for q in wanted}
    rows = {"static alone (SIF word vectors, full text of results, need title)": figures(qrels, alone, group_of),
            "hybrid, the default (dense + BM25 + char, weights 1)": figures(qrels, default, group_of)}
    for weight in (1.0, 0.5):
        run = hybrid(dict.fromkeys(plain, 1.0) | {"static": weight})
        rows[f"hybrid + static, weight {weight}"] = figures(qrels, run, group_of)
        rows[f"p, hybrid + static {weight} vs default, collapsed (paired t-test)"] = paired(qrels, default, run,
                                                                                            group_of)
    return rows


def tuned_rows(data: Path, splits: tuple[str, ...], folds: int, seed: int, threads: int, work: Path) -> dict:
    """The hybrid with the base and with the out-of-fold tuned dense signal, per split."""
    import torch

    from embeddings.contrastive import SplitEncoder, TrainConfig
    from recommender.learning.contrastive import cross_validate
    from recommender.pipeline import new_index
    from recommender.records import load_records
    from recommender.trec import read_qrels

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    needs = {n.id: n for n in load_records(data / "needs.dev.jsonl", "need")[0]}
    qrels = read_qrels(data / "qrels.dev.txt")
    index = new_index("result")
    index.build(load_records(data / "results.jsonl", "result")[0])
    group_of = index.duplicates.mapping()
    config = TrainConfig(train_layers=2, epochs=4, batch_size=32, lr=5e-5, hard_negatives=1, seed=seed)
    encoder = SplitEncoder(2)
    encoder.prepare([r.as_passage().dense_text for r in index.records.values()], "passage")
    encoder.prepare([n.as_query().dense_text for n in needs.values() if n.id in qrels], "query")
    groups, ids, grades = [], [], []
    for need_id in sorted(qrels):
        for result_id, grade in sorted(qrels[need_id].items()):
            groups.append(need_id)
            ids.append(result_id)
            grades.append(grade)
    out: dict = {}
    for name in splits:
        start = time.perf_counter()
        fold_list = [(fold_qrels(groups, ids, grades, train), fold_qrels(groups, ids, grades, test))
                     for train, test in pair_folds(name, groups, folds, seed)]
        result = cross_validate(index, needs, fold_list, config, encoder, MIN_GRADE, work / name, True,
                                by_pair=name == "pair", depth=CANDIDATES)
        evaluated = result["evaluated"]
        base, tuned = result["runs"]["base"]["hybrid"], result["runs"]["tuned"]["hybrid"]
        out[f"tuned encoder, split by {name}"] = {
            "queries": len(evaluated),
            "hybrid, base e5-small (the default)": figures(evaluated, base, group_of),
            "hybrid, tuned e5-small (out of fold)": figures(evaluated, tuned, group_of),
            "p, tuned vs base, collapsed (paired t-test)": paired(evaluated, base, tuned, group_of),
            "seconds": round(time.perf_counter() - start, 1),
        }
        typer.echo(json.dumps(out[f"tuned encoder, split by {name}"], ensure_ascii=False))
    return out


def main(
    data: Annotated[Path, typer.Option(help="bdci2019 folder (dev half only)")] = DATA,
    static_model: Annotated[Path | None, typer.Option(
        help="folder built by 'techmatch distil-static' (default: TECHMATCH_STATIC_MODEL's)")] = None,
    split: Annotated[list[str] | None, typer.Option(help="need or pair (the tuned encoder); default both")] = None,
    folds: Annotated[int, typer.Option(min=2, help="folds of each split")] = 5,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
    work: Annotated[Path, typer.Option(help="the tuned encoder's checkpoints")] = Path("var/collapsed_extra"),
    skip_static: Annotated[bool, typer.Option(help="leave out the static rows")] = False,
    skip_tuned: Annotated[bool, typer.Option(help="leave out the tuned-encoder rows")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the figures here")] = None,
) -> None:
    """Static-signal and tuned-encoder rows with raw, collapsed and condensed figures."""
    if not (data / "qrels.dev.txt").exists():
        _fail(f"{data}: the shared bdci2019 data is not there")
    splits = tuple(dict.fromkeys(split or SPLITS))
    if any(s not in SPLITS for s in splits):
        _fail(f"unknown split in {splits}: use {', '.join(SPLITS)}")
    if static_model is None:
        from recommender.settings import PipelineSettings

        static_model = PipelineSettings().static_model
    if not skip_static and not (static_model / "manifest.json").exists():
        _fail(f"{static_model}: no static model (build it with 'techmatch distil-static')")
    start = time.perf_counter()
    table: dict = {}
    if not skip_static:
        table["static signal"] = static_rows(data, static_model)
        typer.echo(json.dumps(table["static signal"], ensure_ascii=False))
    if not skip_tuned:
        table |= tuned_rows(data, splits, folds, seed, threads, work)
    table["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(table, ensure_ascii=False)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


if __name__ == "__main__":
    typer.run(main)
