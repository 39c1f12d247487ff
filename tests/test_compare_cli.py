"""`techmatch compare` and the files `techmatch eval` writes (run, per-need CSV, plots), end to end in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.trec import read_run, write_qrels, write_run
from tests.conftest import EXPECTED

N_NEEDS = 40


def techmatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "techmatch", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _run_placing_relevant_at(ranks: dict[str, int], depth: int = 100) -> dict[str, dict[str, float]]:
    """A run where need q's relevant result 'q-rel' sits at ranks[q] among distractors."""
    run: dict[str, dict[str, float]] = {}
    for qid, rank in ranks.items():
        ids = [f"{qid}-d{i}" for i in range(depth - 1)]
        ids.insert(rank - 1, f"{qid}-rel")
        run[qid] = {doc: float(depth - i) for i, doc in enumerate(ids)}
    return run


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Qrels for 40 needs (one relevant result each, plus a judged miss), a good run and a clearly worse one."""
    folder = tmp_path_factory.mktemp("compare")
    qids = [f"q{i:02d}" for i in range(N_NEEDS)]
    write_qrels({q: {f"{q}-rel": 2, f"{q}-d0": 0} for q in qids}, folder / "qrels.txt")
    rng = random.Random(3)
    good = {q: rng.choice([1, 1, 1, 2, 3]) for q in qids}  # relevant result near the top
    bad = {q: rng.choice([1, 8, 15, 40, 90]) for q in qids}  # mostly deep down, sometimes first
    write_run(_run_placing_relevant_at(good), folder / "good.run", tag="good")
    write_run(_run_placing_relevant_at(bad), folder / "bad.run", tag="bad")
    (folder / "good_copy.run").write_text((folder / "good.run").read_text(encoding="utf-8"), encoding="utf-8")
    return {"qrels": folder / "qrels.txt", "good": folder / "good.run", "bad": folder / "bad.run",
            "copy": folder / "good_copy.run", "folder": folder}


def _tests_by_metric(payload: dict) -> dict[str, dict]:
    return {t["metric"]: t for t in payload["tests"]}


def test_real_difference_is_significant(judged: dict[str, Path]):
    proc = techmatch("compare", str(judged["bad"]), str(judged["good"]), "--qrels", str(judged["qrels"]),
                     "--min-grade", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout.strip().splitlines()[-1])
    assert payload["systems"] == ["bad", "good"] and payload["queries"] == N_NEEDS
    tests = _tests_by_metric(payload)
    assert tests["mrr@10"]["significant"] and tests["mrr@10"]["p_value"] < 0.01
    assert tests["mrr@10"]["delta"] > 0.3  # good minus bad
    assert tests["ndcg@10"]["significant"]
    assert payload["means"]["good"]["recall@10"] == 1.0
    # the human-readable table shows both systems side by side and marks the difference
    proc = techmatch("compare", str(judged["bad"]), str(judged["good"]), "--qrels", str(judged["qrels"]),
                     "--min-grade", "2", "--test", "fisher")
    assert proc.returncode == 0, proc.stderr
    assert "Fisher's randomization test" in proc.stdout
    mrr_line = next(line for line in proc.stdout.splitlines() if line.startswith("mrr@10"))
    assert mrr_line.rstrip().endswith("*")


def test_identical_runs_are_not_significant(judged: dict[str, Path]):
    proc = techmatch("compare", str(judged["good"]), str(judged["copy"]), str(judged["bad"]),
                     "--qrels", str(judged["qrels"]), "--min-grade", "2", "--names", "A,A2,B", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout.strip().splitlines()[-1])
    same = [t for t in payload["tests"] if {t["baseline"], t["system"]} == {"A", "A2"}]
    assert len(same) == len(payload["means"]["A"])  # one test per metric
    assert all(not t["significant"] and t["p_value"] == 1.0 and t["delta"] == 0 for t in same)
    assert payload["means"]["A"] == payload["means"]["A2"]


def test_compare_clear_errors(judged: dict[str, Path], tmp_path: Path):
    broken = tmp_path / "broken.run"
    broken.write_text("q00 Q0 q00-rel 1 0.5 tag\nq01 Q0 q01-rel one 0.5 tag\n", encoding="utf-8")
    qrels, good = str(judged["qrels"]), str(judged["good"])
    cases = [  # each case is a CLI start (~4 s of CPU): the distinct failure paths only
        (("compare", good, str(tmp_path / "missing.run"), "--qrels", qrels), "run file not found"),
        (("compare", good, str(broken), "--qrels", qrels), "broken.run, line 2: field 'rank'"),
        (("compare", good, "--qrels", qrels), "at least two run files"),
        (("compare", good, str(judged["bad"]), "--qrels", good), "malformed qrels line"),
        (("compare", good, str(judged["bad"]), "--qrels", qrels, "--min-grade", "3"), "lower --min-grade"),
    ]
    for args, message in cases:
        proc = techmatch(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_eval_writes_plots_per_query_csv_and_run(needs_path: Path, results_path: Path, tmp_path: Path):
    # each need: its obvious result strong (3), another plausible one weak (1), an unrelated one judged 0
    qrels = {need: {result: 3, "R8": 0} for need, result in EXPECTED.items()}
    qrels["N1"]["R4"] = 1
    qrels["N4"]["R4"] = 1
    write_qrels(qrels, tmp_path / "qrels.txt")
    plots, per_query, run = tmp_path / "plots", tmp_path / "per_query.csv", tmp_path / "system.run"
    proc = techmatch("eval", "--needs", str(needs_path), "--results", str(results_path),
                     "--qrels", str(tmp_path / "qrels.txt"), "--min-grade", "2", "--json",
                     "--plot", str(plots), "--per-query", str(per_query), "--run", str(run))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["queries"] == 4 and figures["recall@10"] == 1.0

    pngs = sorted(p.name for p in plots.glob("*.png"))
    assert pngs == ["latency.png", "ndcg_histogram.png", "recall_curves.png"]
    for png in plots.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000

    with per_query.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["need_id"] for r in rows} == set(EXPECTED)
    assert {"title", "ndcg@10", "recall@100", "mrr@10"} <= set(rows[0])
    assert all(0.0 <= float(r["ndcg@10"]) <= 1.0 for r in rows)

    ranked = read_run(run)
    assert set(ranked) == set(EXPECTED)
    tops = {need: max(scores, key=scores.get) for need, scores in ranked.items()}
    assert tops == EXPECTED  # the saved run is the real ranking, not a placeholder

    # and the saved run feeds `techmatch compare` (against itself: nothing differs)
    proc = techmatch("compare", str(run), str(run), "--names", "a,b", "--qrels", str(tmp_path / "qrels.txt"),
                     "--min-grade", "2")
    assert proc.returncode == 0, proc.stderr
    assert "4 evaluable needs" in proc.stdout


def test_eval_and_compare_on_duplicate_groups(results_path: Path, needs_path: Path, tmp_path: Path):
    # R1b is R1 registered twice (full-width punctuation added): one duplicate group {R1, R1b}.
    lines = results_path.read_text(encoding="utf-8").splitlines()
    twin = json.loads(lines[0]) | {"id": "R1b"}
    twin["title"] = twin["title"] + "。"
    results = tmp_path / "results.jsonl"
    results.write_text("\n".join([*lines, json.dumps(twin, ensure_ascii=False)]) + "\n", encoding="utf-8")
    # Only R1b is judged for N1 (grade 3); each other need's obvious result is judged 3.
    qrels = {need: {result: 3} for need, result in EXPECTED.items()}
    qrels["N1"] = {"R1b": 3}
    write_qrels(qrels, tmp_path / "qrels.txt")
    run = tmp_path / "collapsed.run"
    proc = techmatch("eval", "--needs", str(needs_path), "--results", str(results), "--qrels",
                     str(tmp_path / "qrels.txt"), "--min-grade", "2", "--json", "--collapse-duplicates",
                     "--run", str(run))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    # On groups: every need's one judged item (N1: the group, grade max(3, unjudged) = 3) is first -> nDCG 1;
    # the top 10 of 8 groups holds exactly 1 judged item per need -> judged@10 = 1/10; condensed: 1.0.
    assert figures["collapsed"] is True and figures["duplicate_groups"] == 1
    assert figures["ndcg@10"] == 1.0 and figures["condensed_ndcg@10"] == 1.0
    assert figures["judged@10"] == pytest.approx(0.1)
    assert figures["top10_repeats"] == 0
    assert all(not ({"R1", "R1b"} <= set(scores)) for scores in read_run(run).values())

    proc = techmatch("compare", str(run), str(run), "--names", "a,b", "--qrels", str(tmp_path / "qrels.txt"),
                     "--min-grade", "2", "--collapse-duplicates", "--results", str(results), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["means"]["a"]["ndcg@10"] == 1.0

    # a run naming a result the results file does not have: one clear line, exit 2
    stray = tmp_path / "stray.run"
    write_run({"N1": {"ZZZ": 1.0, "R1": 0.5}}, stray, tag="stray")
    proc = techmatch("compare", str(run), str(stray), "--qrels", str(tmp_path / "qrels.txt"),
                     "--collapse-duplicates", "--results", str(results))
    assert proc.returncode == 2 and "not in" in proc.stderr and "ZZZ" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = techmatch("compare", str(run), str(stray), "--qrels", str(tmp_path / "qrels.txt"), "--collapse-duplicates")
    assert proc.returncode == 2 and "--results" in proc.stderr, proc.stderr
