"""Both directions of matching: needs -> results, and results -> needs (enterprises).

A matcher folder holds one hybrid index per side; the results side is required, the needs side is
optional (it is what lets a broker push a result to the enterprises whose needs it answers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recommender.ann.base import IndexLoadError
from recommender.errors import UnknownIdError
from recommender.filters import ResultFilters
from recommender.hybrid import HybridIndex, Match
from recommender.pipeline import new_index, open_index
from recommender.records import Record
from recommender.settings import PipelineSettings
from recommender.signal import TextsLike

SIDES = {"result": "results", "need": "needs"}
MATCHER_MANIFEST = "matcher.json"
GRADER_FOLDER = "grader"  # an optional learned grader (recommender.learning), installed by 'techmatch train'


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

    def match_texts(
        self, texts: Sequence[TextsLike], k: int = 10, filters: ResultFilters | None = None, explain: bool = True
    ) -> list[list[Match]]:
        """Results for free-text needs."""
        return self.results.search(texts, k, filters=filters, explain=explain)

    def match_needs(self, needs: Sequence[Record], k: int = 10, explain: bool = True) -> list[list[Match]]:
        return self.match_texts([n.as_query() for n in needs], k, explain=explain)

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
        if self.needs is None:
            raise IndexLoadError("this index holds no needs: build it with 'techmatch index --needs N'")
        return self.needs.search([r.as_query() for r in results], k, explain=explain)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.results.save(folder / SIDES["result"])
        if self.needs is not None:
            self.needs.save(folder / SIDES["need"])
        sides = ["result"] + (["need"] if self.needs is not None else [])
        (folder / MATCHER_MANIFEST).write_text(json.dumps({"sides": sides}), encoding="utf-8")
        if self.grader is not None:
            self.grader.save(folder / GRADER_FOLDER)

    @classmethod
    def load(cls, folder: str | Path, settings: PipelineSettings | None = None) -> Matcher:
        folder = Path(folder)
        if not (folder / MATCHER_MANIFEST).exists():
            raise IndexLoadError(f"{folder}: not a techmatch index folder (build one with 'techmatch index')")
        results = open_index(folder / SIDES["result"], "result", settings)
        needs = open_index(folder / SIDES["need"], "need", settings) if (folder / SIDES["need"]).exists() else None
        grader = None
        if (folder / GRADER_FOLDER).exists():
            from recommender.learning.grader import Grader

            grader = Grader.load(folder / GRADER_FOLDER)  # refuses a damaged or edited grader (IndexLoadError)
        return cls(results, needs, grader)
