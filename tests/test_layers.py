"""The layers contract (pyproject.toml, checked by import-linter): the library never imports the CLI or service.

The first test is the check itself; the second shows it is not one that cannot fail, by running it on a copy
of the packages in which the engine reaches up into the command line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("techmatch", "service", "eval", "recommender", "embeddings", "data")


def _lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", str(folder / "pyproject.toml"), "--no-cache"], cwd=folder,
                          capture_output=True, text=True, env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"})


def test_lower_layers_never_import_higher_ones() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_the_check_fails_when_the_engine_imports_the_command_line(tmp_path: Path) -> None:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    hybrid = tmp_path / "recommender" / "hybrid.py"
    hybrid.write_text(hybrid.read_text(encoding="utf-8") + "\n\ndef _upwards():\n    import techmatch.cli  # noqa\n",
                      encoding="utf-8")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    assert "recommender.hybrid -> techmatch.cli" in done.stdout, done.stdout
