"""Both directions of matching, and the one index-folder format that holds them.

A matcher holds one hybrid index per side: results (what needs are matched against) and needs (what lets
a broker push a result to the enterprises whose needs it answers), plus an optional learned grader. Its
folder::

    matcher.json      {"sides": [...], "format_version": 1}: the sides saved (an empty side is not)
    results/ needs/   one hybrid index each (records, every signal, a manifest with checksums)
    grader/           optional: a learned grader installed by 'techmatch train' (checksummed artefact)

The CLI, the evaluation and the service all read and write folders through this module only.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recommender.ann.base import IndexLoadError
from recommender.errors import EmptyIndexError, UnknownIdError
from recommender.filters import ResultFilters
from recommender.hybrid import HybridIndex, Match
from recommender.pipeline import new_index, open_index
from recommender.records import Kind, Record
from recommender.settings import PipelineSettings
from recommender.signal import TextsLike

SIDES: dict[Kind, str] = {"result": "results", "need": "needs"}
MATCHER_MANIFEST = "matcher.json"
MATCHER_FORMAT = 1
GRADER_FOLDER = "grader"  # an optional learned grader (recommender.learning), installed by 'techmatch train'
log = logging.getLogger("techmatch")


class Matcher:
    """Hybrid indexes of results (and optionally needs), searched with the other side's text."""

    def __init__(self, results: HybridIndex, needs: HybridIndex | None = None, grader: Any | None = None) -> None:
        self.results = results
        self.needs = needs
        self.grader = grader  # a recommender.learning.grader.Grader, or None: matches then carry no grade

    @classmethod
    def build(
        cls, results: Sequence[Record], needs: Sequence[Record] | None = None,
        settings: PipelineSettings | None = None,
    ) -> Matcher:
        results_index = new_index("result", settings)
        results_index.build(results)
        needs_index = None
        if needs:
            needs_index = new_index("need", settings)
            needs_index.build(needs)
        return cls(results_index, needs_index)

    @classmethod
    def empty(cls, settings: PipelineSettings | None = None) -> Matcher:
        """Both sides, nothing indexed yet (a new service)."""
        return cls(new_index("result", settings), new_index("need", settings))

    def side(self, kind: Kind) -> HybridIndex | None:
        return self.results if kind == "result" else self.needs

    def set_side(self, kind: Kind, index: HybridIndex) -> None:
        if kind == "result":
            self.results = index
        else:
            self.needs = index

    # -- both directions ------------------------------------------------------------------------
    def match_texts(
        self, texts: Sequence[TextsLike], k: int = 10, filters: ResultFilters | None = None, explain: bool = True,
        collapse: bool = False,
    ) -> list[list[Match]]:
        """Results for free-text needs (``collapse``: one per duplicate group)."""
        return self.results.search(texts, k, filters=filters, explain=explain, collapse=collapse)

    def match_needs(
        self, needs: Sequence[Record], k: int = 10, explain: bool = True, collapse: bool = False
    ) -> list[list[Match]]:
        return self.match_texts([n.as_query() for n in needs], k, explain=explain, collapse=collapse)

    def need_record(self, need_id: str) -> Record:
        if self.needs is None or need_id not in self.needs.records:
            raise UnknownIdError(f"unknown need id '{need_id}'")
        return self.needs.records[need_id]

    def result_record(self, result_id: str) -> Record:
        if result_id not in self.results.records:
            raise UnknownIdError(f"unknown result id '{result_id}'")
        return self.results.records[result_id]

    def match_results(self, results: Sequence[Record], k: int = 10, explain: bool = True) -> list[list[Match]]:
        """Needs (and so enterprises) for results: the reverse direction."""
        if self.needs is None or not len(self.needs):
            raise EmptyIndexError("this index holds no needs: build it with 'techmatch index --needs N' "
                                  "(or, in the service, add needs first)")
        return self.needs.search([r.as_query() for r in results], k, explain=explain)

    # -- the folder -----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write every non-empty side (an empty side's old folder is removed), then the manifest.

        The grader is not written here: it is installed on its own (``install_grader``) and left as it is."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sides: list[str] = []
        for kind, name in SIDES.items():
            index = self.side(kind)
            if index is not None and len(index):
                index.save(folder / name)
                sides.append(kind)
            elif (folder / name).exists():
                shutil.rmtree(folder / name)
        manifest = {"sides": sides, "format_version": MATCHER_FORMAT}
        (folder / MATCHER_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")

    @staticmethod
    def install_grader(folder: str | Path, grader: Any) -> Path:
        """Put a grader into an index folder: written beside it first, then swapped in whole."""
        folder = Path(folder)
        staging = folder / f"{GRADER_FOLDER}.new"
        shutil.rmtree(staging, ignore_errors=True)
        grader.save(staging)
        shutil.rmtree(folder / GRADER_FOLDER, ignore_errors=True)
        staging.rename(folder / GRADER_FOLDER)
        return folder / GRADER_FOLDER

    @staticmethod
    def install_side(folder: str | Path, kind: Kind, index: HybridIndex) -> Path:
        """Replace one side of a saved index folder (re-embedded with another model): written beside it first,
        then swapped in whole, so a stopped run leaves the old side intact."""
        folder = Path(folder)
        target = folder / SIDES[kind]
        staging = folder / f"{SIDES[kind]}.new"
        shutil.rmtree(staging, ignore_errors=True)
        index.save(staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target

    @classmethod
    def load(
        cls, folder: str | Path, settings: PipelineSettings | None = None, missing_ok: bool = False,
        strict_grader: bool = True,
    ) -> Matcher:
        """Load a folder written by ``save`` (damaged or other-model indexes raise ``IndexLoadError``).

        ``missing_ok``: a folder without a manifest gives an empty matcher (a service's first start);
        ``strict_grader=False``: a damaged grader is left out with a warning instead of refusing the folder."""
        folder = Path(folder)
        manifest = folder / MATCHER_MANIFEST
        if not manifest.exists():
            if missing_ok:
                return cls.empty(settings)
            raise IndexLoadError(f"{folder}: not a techmatch index folder (build one with 'techmatch index')")
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
            sides = set(info["sides"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise IndexLoadError(f"{manifest}: damaged index manifest ({exc})") from None
        if info.get("format_version", MATCHER_FORMAT) != MATCHER_FORMAT:
            raise IndexLoadError(f"{folder}: index folder format {info.get('format_version')} is not supported; "
                                 "rebuild it with 'techmatch index'")
        loaded: dict[str, HybridIndex | None] = {}
        for kind, name in SIDES.items():
            if kind in sides:
                loaded[kind] = open_index(folder / name, kind, settings)
            else:
                loaded[kind] = new_index(kind, settings) if missing_ok or kind == "result" else None
        return cls(loaded["result"], loaded["need"], cls._load_grader(folder, strict_grader))  # type: ignore[arg-type]

    @staticmethod
    def _load_grader(folder: Path, strict: bool) -> Any | None:
        if not (folder / GRADER_FOLDER).exists():
            return None
        from recommender.learning.grader import Grader

        try:
            return Grader.load(folder / GRADER_FOLDER)  # refuses a damaged or edited grader (IndexLoadError)
        except IndexLoadError as exc:
            if strict:
                raise
            log.warning("grader at %s not used: %s", folder / GRADER_FOLDER, exc)
            return None
