"""Every ``techmatch`` command given bad input ends with exit code 2 and one clear line, never a traceback.

The commands are enumerated from the typer app itself, so a new command without cases here fails
``test_every_command_has_cases``. Each case is one kind of bad input a user gives in practice: a missing
file, an empty file, a file in the wrong format, the same file twice (or an output that would overwrite an
input), a damaged index folder or database, an unknown id, an option out of range. They run in-process
through typer's ``CliRunner`` (the app's command group is where errors become messages, so this is what
the console entry point prints too); ``test_real_entry_point`` runs a few through ``python -m techmatch``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from techmatch.cli import app

FIXTURES = Path(__file__).parent / "fixtures"


def leaf_commands(group, prefix: tuple[str, ...] = ()) -> list[str]:  # noqa: ANN001 (typer's own click)
    """Every command path of the app ('index', 'keys create', ...), walking the groups typer built."""
    found: list[str] = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):  # a group (keys, users, ...)
            found += leaf_commands(command, (*prefix, name))
        else:
            found.append(" ".join((*prefix, name)))
    return found


@dataclass(frozen=True)
class Files:
    """The inputs the cases refer to, made once per module (one small real index)."""

    root: Path
    results: Path
    results_csv: Path
    needs: Path
    qrels: Path
    run: Path
    pairs: Path
    unknown_pairs: Path
    unknown_qrels: Path
    missing: Path
    empty: Path
    not_json: Path
    fake_xlsx: Path
    index: Path
    damaged_index: Path
    not_index: Path
    home: Path
    damaged_home: Path
    labels: Path  # a folder of review labels files (techmatch review simulate)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("bad-input")
    results = FIXTURES / "results.jsonl"
    needs = FIXTURES / "needs.jsonl"
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    results_csv = root / "results.csv"
    import pandas as pd

    pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, list)} for r in rows]).to_csv(results_csv,
                                                                                             index=False)
    (root / "qrels.txt").write_text("N1 0 R1 3\nN2 0 R3 3\nN3 0 R5 2\nN4 0 R2 2\n", encoding="utf-8")
    (root / "a.run").write_text("N1 Q0 R1 1 0.9 a\nN2 Q0 R3 1 0.9 a\n", encoding="utf-8")
    (root / "pairs.tsv").write_text("N1\tR1\nN2\tR3\n", encoding="utf-8")
    (root / "unknown_pairs.tsv").write_text("N1\tR1\nN2\tNOPE\n", encoding="utf-8")
    (root / "unknown_qrels.txt").write_text("X1 0 R1 3\nX2 0 R3 3\n", encoding="utf-8")
    (root / "empty.jsonl").write_bytes(b"")
    (root / "not_json.jsonl").write_text("this is not JSON\n{also not\n", encoding="utf-8")
    (root / "fake.xlsx").write_text("a text file, not a workbook\n", encoding="utf-8")
    index = root / "index"
    result = CliRunner().invoke(app, ["index", "--results", str(results), "--needs", str(needs), "--out", str(index)])
    assert result.exit_code == 0, result.output
    damaged = root / "damaged-index"
    shutil.copytree(index, damaged)
    biggest = max((p for p in damaged.rglob("*") if p.is_file() and p.name != "manifest.json"),
                  key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])  # a save cut short
    (root / "not-index").mkdir()
    (root / "home").mkdir()
    (root / "damaged-home").mkdir()
    (root / "damaged-home" / "techmatch.db").write_bytes(b"this is not an SQLite database" * 100)
    labels = root / "labels"
    labels.mkdir()
    for name, text in {"unknown": "R1\t1\nNOPE\t0\n", "bad_label": "R1\t1\nR2\t2\n", "no_relevant": "R1\t0\nR2\t0\n",
                       "empty": "", "ok": "R1\t1\nR2\t0\nR3\t0\n"}.items():
        (labels / f"{name}.tsv").write_text(text, encoding="utf-8")
    return Files(root, results, results_csv, needs, root / "qrels.txt", root / "a.run", root / "pairs.tsv",
                 root / "unknown_pairs.tsv", root / "unknown_qrels.txt",
                 root / "nope.jsonl", root / "empty.jsonl", root / "not_json.jsonl", root / "fake.xlsx", index,
                 damaged, root / "not-index", root / "home", root / "damaged-home", labels)


# command path -> {kind of bad input -> (its arguments, what the one line must say)}; {name} is a field of
# Files. Every command of the app must be here (test_every_command_has_cases).
G = "--train-needs {needs} --train-qrels {qrels} --needs {needs} --results {results}"  # grade's inputs
S = "shortlist --needs {needs} --results {results} --top 2"  # shortlist's inputs
CASES: dict[str, dict[str, tuple[str, str]]] = {
    "index": {
        "missing file": ("index --results {missing} --out {root}/o1", "does not exist"),
        "empty file": ("index --results {empty} --out {root}/o2", "is empty"),
        "wrong format": ("index --results {not_json} --out {root}/o3", "line 1: is not valid JSON"),
        "wrong format xlsx": ("index --results {fake_xlsx} --out {root}/o4", "not a readable Excel workbook"),
        "output is an input": ("index --results {results_csv} --out {results_csv}", "is a file, not a folder"),
        "option out of range": ("index --results {results} --out {root}/o5 --signals dense,nosuch",
                                "unknown signal(s) ['nosuch']"),
        "missing tuned model": ("index --results {results} --out {root}/o6 --model e5-tuned:{missing}",
                                "no tuned e5 weights here"),
    },
    "match": {
        "missing index": ("match --index {missing} --text 电池", "not a techmatch index folder"),
        "not an index": ("match --index {not_index} --text 电池", "not a techmatch index folder"),
        "damaged index": ("match --index {damaged_index} --text 电池", "damaged index"),
        "missing file": ("match --index {index} --needs {missing}", "does not exist"),
        "empty file": ("match --index {index} --needs {empty}", "is empty"),
        "wrong format": ("match --index {index} --needs {not_json}", "is not valid JSON"),
        "unknown id": ("match --index {index} --result NOPE", "unknown result id 'NOPE'"),
        "option out of range": ("match --index {index} --text 电池 --top 0", "'--top'"),
    },
    "eval": {
        "missing file": ("eval --needs {needs} --results {results} --qrels {missing}", "qrels file not found"),
        "empty file": ("eval --needs {needs} --results {results} --qrels {empty}", "no judgements"),
        "wrong format": ("eval --needs {needs} --results {results} --qrels {not_json}", "line 1"),
        "output is an input": ("eval --needs {needs} --results {results} --qrels {qrels} --run {qrels}",
                               "is also an input"),
        "option out of range": ("eval --needs {needs} --results {results} --qrels {qrels} --min-grade 0",
                                "'--min-grade'"),
        "nothing judged at this grade": ("eval --needs {needs} --results {results} --qrels {qrels} --min-grade 9",
                                         "grade >= 9"),
        "cross-encoder without judgements": ("eval --needs {needs} --results {results} --qrels {qrels} "
                                             "--cross-encoder", "give --train-needs and --train-qrels"),
        "cross-encoder work folder is a file": (
            "eval --needs {needs} --results {results} --qrels {qrels} --train-needs {needs} --train-qrels {qrels} "
            "--cross-encoder --work {results}", "is a file, not a folder"),
    },
    "compare": {
        "missing file": ("compare {run} {missing} --qrels {qrels}", "run file not found"),
        "empty file": ("compare {run} {empty} --qrels {qrels}", "empty run file"),
        "wrong format": ("compare {run} {not_json} --qrels {qrels}", "malformed run line"),
        "same file twice": ("compare {run} {run} --qrels {qrels}", "is given twice"),
        "option out of range": ("compare {run} {qrels} --qrels {qrels} --alpha 2", "'--alpha'"),
    },
    "demo-world": {
        "output is a file": ("demo-world --out {results} --results 10 --needs 5", "is a file, not a folder"),
        "option out of range": ("demo-world --out {root}/w1 --results -1", "'--results'"),
        "impossible world": ("demo-world --out {root}/w2 --results 10 --needs 5 --enterprises 0",
                             "at least one enterprise"),
    },
    "shortlist": {
        "missing file": ("shortlist --needs {missing} --results {results} --top 2 --out {root}/s1.csv",
                         "does not exist"),
        "empty file": ("shortlist --needs {empty} --results {results} --top 2 --out {root}/s2.csv", "is empty"),
        "wrong format": (S + " --out {root}/s3.csv --funds {not_json}", "is not valid JSON"),
        "output is an input": ("shortlist --needs {needs} --results {results_csv} --top 2 --out {results_csv}",
                               "is also an input"),
        "damaged index": (S + " --out {root}/s4.csv --index {damaged_index}", "damaged index"),
        "option out of range": ("shortlist --needs {needs} --results {results} --top 0 --out {root}/s5.csv",
                                "'--top'"),
        "cross-encoder without judgements": (S + " --out {root}/s6.csv --cross-encoder",
                                             "give --train-needs and --train-qrels"),
    },
    "push": {
        "missing file": ("push --index {index} --result R1 --funds {missing}", "does not exist"),
        "empty file": ("push --index {index} --result R1 --funds {empty}", "is empty"),
        "wrong format": ("push --index {index} --result R1 --funds {not_json}", "is not valid JSON"),
        "damaged index": ("push --index {damaged_index} --result R1", "damaged index"),
        "unknown result": ("push --index {index} --result NOPE", "unknown result id 'NOPE'"),
        "unknown need": ("push --index {index} --need NOPE", "unknown need id 'NOPE'"),
        "option out of range": ("push --index {index} --result R1 --top 0", "'--top'"),
    },
    "grade": {
        "missing file": ("grade " + G + " --pairs {missing} --out {root}/g1.tsv", "pairs file not found"),
        "empty file": ("grade " + G + " --pairs {empty} --out {root}/g2.tsv", "no pairs"),
        "wrong format": ("grade --train-needs {needs} --train-qrels {not_json} --needs {needs} --results {results}"
                         " --pairs {pairs} --out {root}/g3.tsv", "line 1"),
        "output is an input": ("grade " + G + " --pairs {pairs} --out {pairs}", "is also an input"),
        "pairs in another format": ("grade " + G + " --pairs {run} --out {root}/g4.tsv", "malformed pairs line"),
        "unknown id": ("grade " + G + " --pairs {unknown_pairs} --out {root}/g5.tsv", "result 'NOPE'"),
        "cross-encoder work folder is a file": ("grade " + G + " --pairs {pairs} --out {root}/g6.tsv --cross-encoder "
                                                "--work {results}", "is a file, not a folder"),
        "cross-encoder option out of range": ("grade " + G + " --pairs {pairs} --out {root}/g7.tsv --cross-encoder "
                                              "--cross-encoder-layers 13", "'--cross-encoder-layers'"),
    },
    "train": {
        "missing file": ("train --index {index} --qrels {missing}", "qrels file not found"),
        "empty file": ("train --index {index} --qrels {empty}", "no judgements"),
        "wrong format": ("train --index {index} --feedback {not_json}", "not valid JSON"),
        "damaged index": ("train --index {damaged_index} --qrels {qrels}", "damaged index"),
        "run given as qrels": ("train --index {index} --qrels {run}", "malformed qrels line"),
        "unknown ids": ("train --index {index} --qrels {unknown_qrels}", "no judgement names a known need"),
        "option out of range": ("train --index {index} --qrels {qrels} --holdout 0.9", "'--holdout'"),
        "cross-encoder option out of range": ("train --index {index} --qrels {qrels} --cross-encoder "
                                              "--cross-encoder-epochs 0", "'--cross-encoder-epochs'"),
        "contrastive option out of range": ("train --index {index} --qrels {qrels} --contrastive "
                                            "--contrastive-layers 13", "'--contrastive-layers'"),
        "contrastive, too few judged needs": ("train --index {index} --qrels {qrels} --contrastive "
                                              "--contrastive-folds 5",
                                              "for at least 5 indexed needs (one fold each), got 4"),
    },
    "distil-static": {
        "missing file": ("distil-static --words {missing} --out {root}/d1", "does not exist"),
        "empty file": ("distil-static --words {empty} --out {root}/d2", "is empty"),
        "wrong format": ("distil-static --words {not_json} --out {root}/d3", "line 1: expected 'word'"),
        "missing corpus": ("distil-static --corpus {missing} --out {root}/d4", "does not exist"),
        "output is a file": ("distil-static --words {qrels} --out {results}", "is a file, not a folder"),
        "option out of range": ("distil-static --words {qrels} --out {root}/d5 --dim 2", "'--dim'"),
    },
    "serve": {
        "option out of range": ("serve --home {home} --port 0", "'--port'"),
        "wrong log level": ("serve --home {home} --port 1 --log-level loud", "unknown --log-level 'loud'"),
        "damaged database": ("serve --home {damaged_home} --port 1", "cannot open the database"),
    },
    "reindex": {
        "damaged database": ("reindex --home {damaged_home}", "cannot open the database"),
        "wrong database url": ("reindex --db nosuchdb://x", "database_url must be"),
    },
    "load-demo": {
        "option out of range": ("load-demo --home {home} --size huge", "unknown --size 'huge'"),
        "damaged database": ("load-demo --home {damaged_home} --size tiny", "cannot open the database"),
    },
    "keys create": {
        "option out of range": ("keys create --home {home} --role admin", "unknown role 'admin'"),
        "damaged database": ("keys create --home {damaged_home} --role broker", "cannot open the database"),
    },
    "keys list": {
        "damaged database": ("keys list --home {damaged_home}", "cannot open the database"),
        "unreachable database": ("keys list --db postgresql+psycopg://u:p@127.0.0.1:1/x", "cannot open the database"),
    },
    "keys revoke": {
        "unknown id": ("keys revoke --home {home} nope", "unknown key id 'nope'"),
    },
    "feedback export": {
        "output is an input": ("feedback export --home {home} --out {home}/techmatch.db", "is also an input"),
        "output is a folder": ("feedback export --home {home} --out {root}", "is a folder"),
        "damaged database": ("feedback export --home {damaged_home} --out {root}/fb.jsonl", "cannot open the database"),
    },
    "db upgrade": {
        "damaged database": ("db upgrade --home {damaged_home}", "cannot open the database"),
    },
    "db migrate": {
        "wrong target url": ("db migrate --home {home} --to nosuchdb://x", "--to must be a postgresql+psycopg://"),
        "unreachable target": ("db migrate --home {home} --to postgresql+psycopg://u:p@127.0.0.1:1/x",
                               "cannot open the target database"),
    },
    "db current": {
        "damaged database": ("db current --home {damaged_home}", "cannot open the database"),
    },
    "users create": {
        "option out of range": ("users create --home {home} --username li --role admin --password long-enough-1",
                                "unknown role 'admin'"),
        "password too short": ("users create --home {home} --username li --role broker --password short",
                               "at least 8 characters"),
        "damaged database": ("users create --home {damaged_home} --username li --role broker --password "
                             "long-enough-1", "cannot open the database"),
    },
    "review simulate": {
        "unknown id": ("review simulate --results {results} --labels {labels}/unknown.tsv --json",
                       "1 result id(s) are not in the results file (e.g. 'NOPE')"),
        "label not 0/1": ("review simulate --results {results} --labels {labels}/bad_label.tsv",
                          "line 2: label must be 0 or 1, got '2'"),
        "no relevant result": ("review simulate --results {results} --labels {labels}/no_relevant.tsv",
                               "no result is labelled 1"),
        "empty pool": ("review simulate --results {results} --labels {labels}/empty.tsv", "is empty"),
        "missing file": ("review simulate --results {results} --labels {missing}", "does not exist"),
        "unknown strategy": ("review simulate --results {results} --labels {labels}/ok.tsv --strategy best",
                             "--strategy must be one of"),
        "too many priors": ("review simulate --results {results} --labels {labels}/ok.tsv --prior-included 2",
                            "cannot start from 2 transferable"),
    },
    "users list": {
        "damaged database": ("users list --home {damaged_home}", "cannot open the database"),
    },
    "users disable": {
        "unknown id": ("users disable --home {home} --username nobody", "no user 'nobody'"),
    },
    "users enable": {
        "unknown id": ("users enable --home {home} --username nobody", "no user 'nobody'"),
    },
    "users set-password": {
        "unknown id": ("users set-password --home {home} --username nobody --password long-enough-1",
                       "no user 'nobody'"),
    },
}

# Commands that would start a server when the input is fine: run in a subprocess with a timeout instead.
SUBPROCESS_ONLY = {"serve"}

CASE_IDS = [(command, kind) for command, kinds in CASES.items() for kind in kinds]


def test_every_command_has_cases():
    commands = leaf_commands(typer.main.get_command(app))
    assert len(commands) > 20
    assert sorted(CASES) == sorted(commands), "every techmatch command needs bad-input cases here"


def assert_one_clear_line(code: int, stdout: str, stderr: str, args: list[str], says: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, (args, code, stdout, stderr)
    assert "Traceback" not in stderr + stdout, (args, stderr)
    assert len(lines) == 1, (args, stderr)
    assert lines[0].startswith("error: ") and says in lines[0], (args, says, stderr)


@pytest.mark.parametrize(("command", "kind"), CASE_IDS, ids=[f"{c}: {k}" for c, k in CASE_IDS])
def test_bad_input_gives_one_clear_line(files: Files, command: str, kind: str):
    template, says = CASES[command][kind]
    args = shlex.split(template.format(**{k: str(v) for k, v in vars(files).items()}))
    if command in SUBPROCESS_ONLY:
        proc = techmatch(*args, timeout=120)
        assert_one_clear_line(proc.returncode, proc.stdout, proc.stderr, args, says)
        return
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))
    assert_one_clear_line(result.exit_code, result.stdout, result.stderr, args, says)


ENTRY_POINT_CASES = [("match", "damaged index"), ("compare", "same file twice"), ("users disable", "unknown id")]


@pytest.mark.parametrize(("command", "kind"), ENTRY_POINT_CASES, ids=[f"{c}: {k}" for c, k in ENTRY_POINT_CASES])
def test_real_entry_point(files: Files, command: str, kind: str):
    """The installed console script prints the same one line as the in-process runner (main() is the app)."""
    template, says = CASES[command][kind]
    args = shlex.split(template.format(**{k: str(v) for k, v in vars(files).items()}))
    script = Path(sys.executable).parent / "techmatch"
    proc = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert_one_clear_line(proc.returncode, proc.stdout, proc.stderr, args, says)


def test_no_arguments_shows_help():
    result = CliRunner().invoke(app, ["keys"])
    assert result.exit_code == 2 and "create" in result.output and "Traceback" not in result.output


def techmatch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "techmatch", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
