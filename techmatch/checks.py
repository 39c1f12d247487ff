"""Checks of the paths a command writes, made before any work: an output must never destroy an input.

``techmatch shortlist --results r.csv --out r.csv`` or ``feedback export --out var/techmatch/techmatch.db``
would otherwise overwrite the very file being read (or the database) without a word.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from recommender.errors import UserError


def output_file(out: Path, inputs: Iterable[Path | None], option: str = "--out") -> None:
    """Refuse an output file that is a folder or one of the command's inputs."""
    if out.is_dir():
        raise UserError(f"{option} {out} is a folder: give the name of a file to write")
    _not_an_input(out, inputs, option)


def output_folder(out: Path, inputs: Iterable[Path | None], option: str = "--out") -> None:
    """Refuse an output folder that is an existing file or one of the command's inputs."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {out} is a file, not a folder: give a folder to write into")
    _not_an_input(out, inputs, option)


def _not_an_input(out: Path, inputs: Iterable[Path | None], option: str) -> None:
    target = out.resolve()
    for path in inputs:
        if path is not None and path.resolve() == target:
            raise UserError(f"{option} {out} is also an input of this command: writing it would destroy that file; "
                            "choose another name")
