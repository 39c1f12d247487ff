"""The review loop side by side: random order, the one-shot shortlist, techmatch's loop, ASReview LAB.

    python -m eval.benchmarks.review_bdci --set bdci,demo,csl [--seeds 3] [--asreview PATH] [--asreview-seeds N]
        [--plot-dir eval/benchmarks/figures] [--json]

Same label sets, same starting knowledge (one transferable and one not, drawn by the seed), several seeds.
Label sets: ``bdci`` (bdci2019 dev: pool = the results judged for the dev needs, transferable = graded 3 for
its need, text = titles; the need each was judged against is the loop's context), ``demo`` (the demo world's
transferable results; ``--demo-results`` of them, with their needs), ``csl`` (one discipline among CSL's
2,000 papers, 材料科学与工程 by default, titles and abstracts; CSL's keyword queries are the market).
ASReview LAB runs through its own ``asreview simulate`` (default model, ``--ai elas_u4``), fed jieba-segmented
text (unsegmented Chinese is one token a title to its TF-IDF), from the executable ``--asreview`` names (the
``benchmark`` extra: it is never needed to run techmatch); without one it is left out.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from recommender.records import Record, load_needs, load_results
from recommender.review.pool import market_for, pool_features
from recommender.review.simulate import SimulationResult, draw_priors, simulate
from recommender.trec import read_qrels

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
METRICS = ("reads_to_80", "reads_to_95", "wss@95", "recall@10%")


@dataclass
class LabelSet:
    name: str
    results: list[Record]
    needs: list[Record]
    labels: dict[str, int]
    context: dict[str, str]


def bdci_set(data: Path) -> LabelSet:
    needs = load_needs(data / "needs.dev.jsonl")
    qrels = read_qrels(data / "qrels.dev.txt")
    labels = {rid: int(grade == 3) for judged in qrels.values() for rid, grade in judged.items()}
    context = {rid: nid for nid, judged in qrels.items() for rid in judged}
    return LabelSet("bdci", load_results(data / "results.jsonl"), [n for n in needs if n.id in qrels], labels,
                    context)


def demo_set(results: int) -> LabelSet:
    from data.synthetic import generate_world
    from recommender.records import parse_records

    world = generate_world(7, results, max(results // 12, 10), 241, 204)
    res, _ = parse_records(((f"line {i}", r, None) for i, r in enumerate(world.results, 1)), "result", "demo")
    needs, _ = parse_records(((f"line {i}", n, None) for i, n in enumerate(world.needs, 1)), "need", "demo")
    return LabelSet("demo", res, needs, {r.id: int(r.id in world.transferable) for r in res}, {})


def csl_set(data: Path, field: str) -> LabelSet:
    results = load_results(data / "results.jsonl")
    labels = {r.id: int(r.extra.get("field") == field) for r in results}
    return LabelSet("csl", results, load_needs(data / "needs.dev.jsonl"), labels, {})


def asreview_run(exe: str, ids: list[str], texts: dict[str, tuple[str, str]], labels: dict[str, int],
                 priors: list[str], seed: int) -> tuple[list[str], float]:
    """ASReview's reading order (priors first) from its own simulation on jieba-segmented text."""
    import jieba

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        with open(data, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["record_id", "title", "abstract", "included"])
            for i, rid in enumerate(ids):
                title, abstract = texts[rid]
                w.writerow([i, " ".join(jieba.lcut(title)), " ".join(jieba.lcut(abstract)), labels[rid]])
        row = {rid: i for i, rid in enumerate(ids)}
        out = Path(tmp) / "sim.asreview"
        start = time.perf_counter()
        subprocess.run([exe, "simulate", str(data), "--prior-idx", *[str(row[p]) for p in priors], "--seed",
                        str(seed), "-o", str(out)], check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        with zipfile.ZipFile(out) as z:
            name = next(n for n in z.namelist() if n.endswith("results.db"))
            z.extract(name, tmp)
        con = sqlite3.connect(Path(tmp) / name)
        read = [int(r[0]) for r in con.execute("SELECT record_id FROM results ORDER BY rowid")]
        con.close()
    order = [ids[i] for i in read]
    prior_set = set(priors)
    order = priors + [r for r in order if r not in prior_set]
    seen = set(order)
    order += [r for r in ids if r not in seen]  # it stops after the last relevant: the rest is read after
    return order, seconds


def result_of(name: str, order: list[str], labels: dict[str, int], seconds: float) -> SimulationResult:
    gains = list(np.cumsum([labels[r] for r in order]).astype(int))
    return SimulationResult(name, len(order), int(sum(labels.values())), order, gains, seconds)


def spread(values: list[float], digits: int) -> dict[str, float]:
    """Mean, standard deviation (0 for one seed), lowest and highest over the seeds."""
    return {"mean": round(statistics.mean(values), digits),
            "sd": round(statistics.stdev(values), digits) if len(values) > 1 else 0.0,
            "min": round(min(values), digits), "max": round(max(values), digits)}


def run_set(ls: LabelSet, seeds: int, exe: str | None, asreview_seeds: int, no_context: bool,
            plot: Path | None) -> dict[str, object]:
    """Every strategy on one label set, the same priors per seed; the first seed's gain curves to ``plot``."""
    start = time.perf_counter()
    market, index = market_for(ls.results, ls.needs)
    by_id = {r.id: r for r in ls.results}
    pool = sorted(ls.labels)
    features = pool_features(pool, by_id, market, ls.context, use_context=not no_context, index=index)
    setup = time.perf_counter() - start
    texts = {rid: (by_id[rid].title, by_id[rid].body) for rid in pool}
    runs: dict[str, list[dict]] = {}
    curves: dict[str, list[int]] = {}
    for seed in range(seeds):
        outcomes = [simulate(features, ls.labels, s, 1, 1, seed) for s in ("random", "one-shot", "loop")]
        if exe and seed < asreview_seeds:
            order, seconds = asreview_run(exe, pool, texts, ls.labels, draw_priors(ls.labels, 1, 1, seed), seed)
            outcomes.append(result_of("asreview", order, ls.labels, seconds))
        for o in outcomes:
            runs.setdefault(o.strategy, []).append(o.to_dict())
            if seed == 0:
                curves[o.strategy] = o.gains
            typer.echo(f"{ls.name} seed {seed} {o.strategy}: {json.dumps(o.to_dict())}", err=True)
    summary: dict[str, object] = {"set": ls.name, "pool": len(pool), "relevant": int(sum(ls.labels.values())),
                                  "seeds": seeds, "setup_seconds": round(setup, 1)}
    for strategy, rows in runs.items():
        summary[strategy] = {m: spread([float(r[m]) for r in rows], 4 if "@" in m or "%" in m else 1)
                             for m in METRICS} | {"seeds": len(rows),
                                                  "seconds": round(statistics.mean(r["seconds"] for r in rows), 1)}
    if "loop" in runs and "one-shot" in runs:
        loop80 = summary["loop"]["reads_to_80"]["mean"]  # type: ignore[index]
        one80 = summary["one-shot"]["reads_to_80"]["mean"]  # type: ignore[index]
        summary["loop_vs_one_shot_reads_to_80"] = round(loop80 / one80 - 1, 4)
    if plot is not None:
        from eval.plots import plot_gain_curves

        plot_gain_curves(curves, len(pool), int(sum(ls.labels.values())), plot)
    return summary


@app.command()
def main(
    label_sets: Annotated[str, typer.Option("--set", help="bdci, demo, csl, or several: bdci,demo,csl")] = "bdci",
    seeds: Annotated[int, typer.Option("--seeds", min=1)] = 3,
    asreview: Annotated[str | None, typer.Option("--asreview", help="the asreview executable")] = None,
    asreview_seeds: Annotated[int | None, typer.Option("--asreview-seeds", min=0,
                                                       help="ASReview on the first N seeds (default: all)")] = None,
    demo_results: Annotated[int, typer.Option("--demo-results", min=100)] = 2000,
    csl_field: Annotated[str, typer.Option("--csl-field")] = "材料科学与工程",
    no_context: Annotated[bool, typer.Option("--no-context", help="bdci: leave the judged need out")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="gain curves of the first seed (PNG; one set)")] = None,
    plot_dir: Annotated[Path | None, typer.Option("--plot-dir", help="a folder: review_<set>.png per set")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reads to 80% / 95% recall, WSS@95 and recall@10% of each strategy: mean, sd, min and max over seeds."""
    names = [n.strip() for n in label_sets.split(",") if n.strip()]
    for name in names:
        if name not in ("bdci", "demo", "csl"):
            raise typer.BadParameter(f"unknown --set '{name}': use bdci, demo or csl")
    exe = asreview or shutil.which("asreview")
    for name in names:
        if name == "bdci":
            ls = bdci_set(SHARED / "bdci2019")
        elif name == "demo":
            ls = demo_set(demo_results)
        else:
            ls = csl_set(SHARED / "csl", csl_field)
        target = plot if plot is not None and len(names) == 1 else (
            plot_dir / f"review_{name}.png" if plot_dir is not None else None)
        summary = run_set(ls, seeds, exe, seeds if asreview_seeds is None else asreview_seeds, no_context, target)
        typer.echo(json.dumps(summary, ensure_ascii=False) if as_json else
                   json.dumps(summary, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    app()
