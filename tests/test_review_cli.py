"""``techmatch review simulate`` (CONTRACT.md): the JSON keys an outside script reads, every strategy, --plot."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from data.synthetic import generate_world, write_world
from techmatch.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = {"pool", "relevant", "strategy", "reads_to_80", "reads_to_95", "wss@95", "recall@10%", "seconds"}


def run(*args: str) -> dict:
    result = CliRunner().invoke(app, ["review", "simulate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_strategy_on_a_small_world_and_the_loop_reads_least(tmp_path: Path):
    world = generate_world(3, 600, 0, 1, 0)
    paths = write_world(world, tmp_path)
    labels = tmp_path / "labels.tsv"
    labels.write_text("".join(f"{r['id']}\t{int(r['id'] in world.transferable)}\n" for r in world.results),
                      encoding="utf-8")
    figures = {s: run("--results", str(paths["results"]), "--labels", str(labels), "--strategy", s, "--seed", "1")
               for s in ("loop", "one-shot", "random")}
    for strategy, f in figures.items():
        assert set(f) >= KEYS and f["strategy"] == strategy and f["pool"] == 600
        assert f["relevant"] == len(world.transferable)
        assert 2 <= f["reads_to_80"] <= f["reads_to_95"] <= 600
        assert abs(f["wss@95"] - ((600 - f["reads_to_95"]) / 600 - 0.05)) < 1e-3
    assert figures["loop"]["reads_to_95"] < figures["random"]["reads_to_95"]
    assert figures["loop"]["wss@95"] > figures["random"]["wss@95"]


def test_one_shot_with_needs_and_a_plot(tmp_path: Path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("R1\t1\nR2\t1\nR3\t0\nR4\t0\nR5\t0\nR6\t0\n", encoding="utf-8")
    plot = tmp_path / "gains.png"
    f = run("--results", str(FIXTURES / "results.jsonl"), "--labels", str(labels), "--needs",
            str(FIXTURES / "needs.jsonl"), "--strategy", "loop", "--plot", str(plot))
    assert f["pool"] == 6 and f["relevant"] == 2 and f["reads_to_95"] <= 6
    assert plot.stat().st_size > 5000 and plot.read_bytes()[:4] == b"\x89PNG"
