"""The techmatch command line, end to end in a subprocess, as a broker would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXPECTED


def techmatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "techmatch", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fixtures = Path(__file__).parent / "fixtures"
    out = tmp_path_factory.mktemp("cli") / "index"
    proc = techmatch("index", "--results", str(fixtures / "results.jsonl"), "--needs", str(fixtures / "needs.jsonl"),
                     "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "indexed 8 results and 4 needs" in proc.stdout
    return out


def test_match_text_table_and_json(index_dir: Path):
    proc = techmatch("match", "--index", str(index_dir), "--text", "冲压零件表面划痕裂纹的视觉自动检测", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    assert "工业零件表面缺陷检测" in proc.stdout
    proc = techmatch("match", "--index", str(index_dir), "--text", "冲压零件表面划痕裂纹的视觉自动检测", "--json")
    payload = json.loads(proc.stdout.strip().splitlines()[-1])
    assert payload["matches"][0]["id"] == "R3"
    assert {"score", "signals", "shared_terms"} <= set(payload["matches"][0])


def test_match_needs_file_and_reverse_direction(index_dir: Path, needs_path: Path):
    proc = techmatch("match", "--index", str(index_dir), "--needs", str(needs_path), "--top", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    tops = {row["query"]: row["matches"][0]["id"] for row in map(json.loads, proc.stdout.strip().splitlines())}
    assert tops == EXPECTED
    proc = techmatch("match", "--index", str(index_dir), "--result", "R5", "--top", "1", "--json")
    assert json.loads(proc.stdout)["matches"][0]["id"] == "N3"


def test_clear_errors_without_traceback(index_dir: Path, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "title": "ok"}\n{broken\n', encoding="utf-8")
    cases = [
        (("index", "--results", str(bad), "--out", str(tmp_path / "o")), "line 2"),
        (("match", "--index", str(tmp_path), "--text", "电池"), "not a techmatch index"),
        (("match", "--index", str(index_dir), "--result", "NOPE"), "unknown result id 'NOPE'"),
        (("match", "--index", str(index_dir), "--text", "  "), "--text is empty"),
        (("match", "--index", str(index_dir), "--text", "电池", "--model", "st:/no/such/model"), "built with model"),
        (("index", "--results", str(bad), "--out", str(tmp_path / "o"), "--model", "glove"), "unknown model"),
    ]
    for args, message in cases:
        proc = techmatch(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_skip_invalid_goes_on_and_reports(tmp_path: Path):
    bad = tmp_path / "results.jsonl"
    bad.write_text('{"id": "x", "title": "碳化硅功率器件"}\n{broken\n{"id": "x", "title": "重复"}\n', encoding="utf-8")
    proc = techmatch("index", "--results", str(bad), "--out", str(tmp_path / "o"), "--skip-invalid")
    assert proc.returncode == 0, proc.stderr
    assert "skipped 2" in proc.stderr and "line 2" in proc.stderr and "line 3" in proc.stderr
    assert "indexed 1 results" in proc.stdout


def test_match_folds_duplicate_results(tmp_path: Path):
    fixtures = Path(__file__).parent / "fixtures"
    lines = (fixtures / "results.jsonl").read_text(encoding="utf-8").splitlines()
    r3 = json.loads(lines[2])
    twin = r3 | {"id": "R3b", "title": " " + r3["title"].replace("的", "的 ") + "！"}  # same title, normalised
    results = tmp_path / "results.jsonl"
    results.write_text("\n".join([*lines, json.dumps(twin, ensure_ascii=False)]) + "\n", encoding="utf-8")
    out = tmp_path / "index"
    proc = techmatch("index", "--results", str(results), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = "冲压零件表面划痕裂纹的视觉自动检测"
    proc = techmatch("match", "--index", str(out), "--text", text, "--json")
    matches = json.loads(proc.stdout.strip().splitlines()[-1])["matches"]
    ids = [m["id"] for m in matches]
    assert ids[0] == "R3" and "R3b" not in ids and matches[0]["duplicates"] == ["R3b"]
    assert all(m["duplicates"] == [] for m in matches[1:])
    proc = techmatch("match", "--index", str(out), "--text", text, "--top", "3")
    assert proc.returncode == 0 and "另有 1 条相似成果" in proc.stdout, proc.stdout
    proc = techmatch("match", "--index", str(out), "--text", text, "--keep-duplicates", "--json")
    matches = json.loads(proc.stdout.strip().splitlines()[-1])["matches"]
    assert {m["id"] for m in matches[:2]} == {"R3", "R3b"} and all(m["duplicates"] == [] for m in matches)
