"""The engine: the one owner of a live index, which the CLI and the service call for everything.

It holds a ``Matcher`` (both sides and the grader), the lock that keeps searches away from changes, and an
index version that every change bumps. Through it go searches in both directions (graded from the hits the
hybrid search already found), push lists, the shortlist (its market pull computed once per index version,
reading the index one batch at a time so that a write never waits for minutes), writes (incremental, or a
refit of a small side built beside the live one and swapped in) and saving the folder. Nothing else takes
the lock or swaps a side.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embeddings.tokenizer import get_tokenizer
from recommender.batching import SearchBatcher
from recommender.errors import EmptyIndexError
from recommender.explain import shared_key_terms
from recommender.filters import ResultFilters
from recommender.hybrid import HybridIndex, Match
from recommender.learning.relevance import JUDGEMENT_WEIGHTS, feedback_scores, pool_from_index
from recommender.matcher import Matcher
from recommender.pipeline import new_index
from recommender.records import Kind, Record
from recommender.rwlock import ReadWriteLock
from recommender.settings import PipelineSettings
from recommender.triage.funds import Fund
from recommender.triage.market import MarketPull, Progress, market_pull
from recommender.triage.push import push_for_need, push_for_result
from recommender.triage.shortlist import ShortlistEntry, market_steps, progress_stages, shortlist_from_market
from recommender.triage.targets import PushTarget

# Below this size a write refits the whole side (cheap, embeddings are cached), so a small catalogue's
# TF-IDF vocabulary is never frozen at its first few records; above it, updates are incremental.
REFIT_BELOW = 2000
DECISIONS = ("relevant", "irrelevant")  # judgements that take a result out of the list it re-ranks
FEEDBACK_CANDIDATES = 100  # results of the default list a need's judgements re-rank
INSTALLED = "installed"  # shortlist(grader=INSTALLED): use the grader installed in the index, if any


@dataclass(frozen=True)
class _Request:
    """One need's search, as the batcher queues it."""

    need: Record
    k: int
    explain: bool
    grade: bool
    collapse: bool = True


class Engine:
    """A live ``Matcher``: thread-safe searches, push, shortlist and writes, and the folder it saves to."""

    def __init__(
        self, matcher: Matcher, settings: PipelineSettings | None = None, folder: str | Path | None = None,
        batch_queries: bool = False, parallel_batches: int | None = None,
    ) -> None:
        self.settings = settings or PipelineSettings()
        self.matcher = matcher
        self.folder = Path(folder) if folder is not None else None
        self.version = 0  # bumped on every change: derived answers (the market pull) are kept per version
        self._lock = ReadWriteLock()
        self._writers = threading.Lock()  # one change at a time; searches go on while a refit is built
        self._saving = threading.Lock()  # one folder save at a time; searches never take it
        self._market: tuple[int, MarketPull] | None = None
        self._market_lock = threading.Lock()
        self.batcher: SearchBatcher[_Request, list[Match]] | None = (
            SearchBatcher(self._run_batch, max_parallel=parallel_batches) if batch_queries else None)

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, folder: str | Path, settings: PipelineSettings | None = None, missing_ok: bool = False,
        strict_grader: bool = True, **options: Any,
    ) -> Engine:
        """The engine over a saved folder (``Matcher.load`` says what is refused); options as ``__init__``."""
        matcher = Matcher.load(folder, settings, missing_ok=missing_ok, strict_grader=strict_grader)
        return cls(matcher, settings, folder, **options)

    @classmethod
    def build(
        cls, results: Sequence[Record], needs: Sequence[Record] | None = None,
        settings: PipelineSettings | None = None, folder: str | Path | None = None,
    ) -> Engine:
        """Index these records from scratch."""
        return cls(Matcher.build(results, needs, settings), settings, folder)

    # -- reading --------------------------------------------------------------------------------
    @property
    def grader(self) -> Any | None:
        return self.matcher.grader

    def count(self, kind: Kind) -> int:
        index = self.matcher.side(kind)
        return len(index) if index is not None else 0

    def counts(self) -> dict[str, int]:
        return {"results": self.count("result"), "needs": self.count("need")}

    def record(self, kind: Kind, record_id: str) -> Record:
        """A stored record of either side (``UnknownIdError`` names the side)."""
        with self._lock.reading():
            return self.matcher.result_record(record_id) if kind == "result" else self.matcher.need_record(record_id)

    def records(self, kind: Kind) -> dict[str, Record]:
        """A copy of one side's records (safe to read while the index changes)."""
        with self._lock.reading():
            index = self.matcher.side(kind)
            return dict(index.records) if index is not None else {}

    def existing_duplicates(self, kind: Kind, records: Sequence[Record]) -> dict[str, list[str]]:
        """Record id -> ids of stored records of this side it duplicates (``DuplicateGroups``), before writing."""
        with self._lock.reading():
            index = self.matcher.side(kind)
            if index is None:
                return {}
            return index.duplicates.existing_duplicates((r.id, r.title) for r in records)

    def results_for(
        self, needs: Sequence[Record], k: int = 10, filters: ResultFilters | None = None, explain: bool = True,
        grade: bool = True, collapse: bool | None = None,
    ) -> list[list[Match]]:
        """Top-k results for each need (stored, from a file, or free text wrapped in a Record), graded by the
        installed grader if there is one. A single unfiltered need joins the concurrent batch when batching.
        ``collapse`` (default: the setting ``collapse_duplicates``) shows each duplicate group once."""
        active = filters is not None and filters.active()
        collapse = self.settings.collapse_duplicates if collapse is None else collapse
        if self.batcher is not None and len(needs) == 1 and not active:
            return [self.batcher.search(_Request(needs[0], k, explain, grade, collapse))]
        with self._lock.reading():
            return self._rank([_Request(n, k, explain, grade, collapse) for n in needs], filters if active else None)

    def results_with_feedback(
        self, need: Record, judgements: Mapping[str, str], k: int = 10, candidates: int = FEEDBACK_CANDIDATES,
        demote_duplicates: bool = False,
    ) -> list[Match]:
        """The need's top-k results not yet judged, re-ranked by the judgements (result id -> 'relevant',
        'irrelevant' or 'interested'): neighbours of a rejected result go down, an accepted one's go up
        (``recommender.learning.relevance``). Results judged relevant or irrelevant leave the list; one marked
        interested stays in it (the enterprise wants it followed up). ``demote_duplicates``: a rejected result's near
        duplicates go to the bottom (off: it cost a point on bdci2019). Only the k shown are explained and graded."""
        judged = {r: JUDGEMENT_WEIGHTS[j] for r, j in judgements.items() if j in JUDGEMENT_WEIGHTS}
        if not judged:
            return self.results_for([need], k)[0]
        with self._lock.reading():
            index = self.matcher.results
            query = need.as_query()
            found = index.search([query], candidates + len(judged), explain=False,
                                 collapse=self.settings.collapse_duplicates)[0]
            pool_ids = [m.id for m in found] + [r for r in judged if r in index.records
                                                 and r not in {m.id for m in found}]
            ranks = list(range(1, len(found) + 1)) + [len(found) + 1] * (len(pool_ids) - len(found))
            pool = pool_from_index(index, query, pool_ids, ranks)
            rows = {pool_ids.index(r): w for r, w in judged.items() if r in index.records}
            scores = feedback_scores(pool, rows, demote_duplicates=demote_duplicates)
            by_id = {m.id: m for m in found}
            decided = {pool_ids.index(r) for r, j in judgements.items() if r in index.records and j in DECISIONS}
            order = sorted((i for i in range(len(found)) if i not in decided), key=lambda i: (-scores[i], i))[:k]
            terms = get_tokenizer().key_terms(query.text, 12)
            chosen = []
            for rank, i in enumerate(order, start=1):
                match = by_id[pool_ids[i]]
                match.shared_terms = shared_key_terms(query.text, match.record.text, query_terms=terms)
                match.rank, match.score = rank, float(scores[i])
                chosen.append(match)
            if self.matcher.grader is not None and chosen:
                self.matcher.grader.annotate(self.matcher, need.id, chosen, "result", query=need)
            return chosen

    def _run_batch(self, requests: Sequence[_Request]) -> list[list[Match]]:
        """What the batcher runs: the waiting requests in one index call per ``explain`` and ``collapse`` setting."""
        answers: dict[int, list[Match]] = {}
        with self._lock.reading():
            for explain, collapse in ((True, True), (True, False), (False, True), (False, False)):
                group = [i for i, r in enumerate(requests) if r.explain == explain and r.collapse == collapse]
                if group:
                    for i, matches in zip(group, self._rank([requests[i] for i in group], None)):
                        answers[i] = matches
        return [answers[i] for i in range(len(requests))]

    def _rank(self, requests: Sequence[_Request], filters: ResultFilters | None) -> list[list[Match]]:
        """Search (caller holds the read lock); the grader reads the signals' hits this search found."""
        index = self.matcher.results
        grader = self.matcher.grader
        grading = grader is not None and any(r.grade for r in requests)
        reuse = grading and filters is None  # filtered candidate lists are not the corpus statistics it reads
        ranked, hits = index.search_with_hits(
            [r.need.as_query() for r in requests], max(r.k for r in requests), filters,
            explain=any(r.explain for r in requests), hit_depth=grader.depth if reuse else 0,
            collapse=any(r.collapse for r in requests),
        )
        out = []
        for request, matches, found in zip(requests, ranked, hits):
            matches = matches[:request.k]
            if grading and request.grade and matches:
                grader.annotate(self.matcher, request.need.id, matches, "result", query=request.need,
                                known_hits=found if reuse else None)
            out.append(matches)
        return out

    def needs_for(
        self, results: Sequence[Record], k: int = 10, explain: bool = True, grade: bool = True
    ) -> list[list[Match]]:
        """Top-k stored needs (and so enterprises) each result answers: the reverse direction."""
        with self._lock.reading():
            rankings = self.matcher.match_results(results, k, explain=explain)
            if grade and self.matcher.grader is not None:
                for result, matches in zip(results, rankings):
                    if result.id in self.matcher.results.records and matches:
                        self.matcher.grader.annotate(self.matcher, result.id, matches, "need")
            return rankings

    def push_result(
        self, result_id: str, funds: Sequence[Fund] = (), k: int = 10, enterprises: dict[str, dict] | None = None,
    ) -> list[PushTarget]:
        """Enterprises (through their needs) and funds to push a stored result to, with reasons."""
        with self._lock.reading():
            if not self.count("need") and not funds:
                raise EmptyIndexError("no needs or funds are stored yet: add them before pushing results")
            return push_for_result(self.matcher, result_id, funds, k, enterprises)

    def push_need(self, need_id: str, k: int = 10) -> list[Match]:
        """The results to send to the enterprise behind a stored need."""
        with self._lock.reading():
            return push_for_need(self.matcher, need_id, k, self.settings.collapse_duplicates)

    def market_pull(
        self, needs: Sequence[Record] | None = None, grader: Any = INSTALLED, progress: bool = False,
        on_progress: Progress | None = None,
    ) -> MarketPull:
        """How strongly each result is wanted by ``needs`` (default: the indexed needs, kept per index version).

        The index is read one batch of needs at a time under the read lock, so writes (and the searches
        queued behind them) wait for a batch, not for the whole corpus; a write during the computation makes
        the next call compute afresh."""
        if grader == INSTALLED:
            grader = self.matcher.grader
        cached = needs is None and grader is self.matcher.grader
        with self._market_lock:
            version = self.version
            if cached and self._market is not None and self._market[0] == version:
                if on_progress is not None:  # already measured: the market stage is done at once
                    steps = market_steps(len(self._market[1].needs), grader is not None)
                    on_progress(steps, steps)
                return self._market[1]
            with self._lock.reading():
                index = self.matcher.results
                if not len(index):
                    raise EmptyIndexError("no results are stored yet: add results before asking for a shortlist")
                chosen = list(needs) if needs is not None else list(self._records("need").values())
            market = market_pull(index, chosen, grader=grader, progress=progress, guard=self._lock.reading,
                                 on_progress=on_progress)
            if cached:
                self._market = (version, market)
            return market

    def shortlist(
        self, top: int, funds: Sequence[Fund] = (), enterprises: dict[str, dict] | None = None,
        needs: Sequence[Record] | None = None, grader: Any = INSTALLED, progress: bool = False,
        on_progress: Progress | None = None,
    ) -> list[ShortlistEntry]:
        """The ``top`` most transferable results with push lists and reasons (see ``recommender.triage``);
        ``on_progress(done, total)`` is one bar over both stages, ending with done == total."""
        if grader == INSTALLED:
            grader = self.matcher.grader
        results = self.records("result")
        wanting = len(needs) if needs is not None else self.count("need")
        on_market, on_push = progress_stages(on_progress, market_steps(wanting, grader is not None),
                                             min(top, len(results)))
        market = self.market_pull(needs, grader, progress, on_market)
        return shortlist_from_market(self.records("result"), market, top, funds, enterprises, progress, on_push,
                                     self.matcher.results.duplicates if self.settings.collapse_duplicates else None)

    def _records(self, kind: Kind) -> dict[str, Record]:
        """One side's records themselves (the caller holds the read lock)."""
        index = self.matcher.side(kind)
        return index.records if index is not None else {}

    # -- writing --------------------------------------------------------------------------------
    def apply(self, kind: Kind, upserts: Iterable[Record] = (), deletes: Iterable[str] = ()) -> None:
        """Add or replace ``upserts`` and remove ``deletes`` on one side.

        A small side is refitted whole, built beside the live one while searches go on, then swapped in;
        a large one, or one whose vectors live in a database other processes share (Milvus), is changed in
        place under the write lock. Either way lazy structures are rebuilt before the next search, not by it."""
        upserts, deletes = list(upserts), list(deletes)
        if not upserts and not deletes:
            return
        with self._writers:
            current = self.matcher.side(kind)
            size = len(current) if current is not None else 0
            if current is None or (size + len(upserts) <= REFIT_BELOW and not current.shared_storage):
                gone = set(deletes)
                merged = {rid: rec for rid, rec in (current.records.items() if current is not None else ())
                          if rid not in gone}
                merged.update({r.id: r for r in upserts})
                self._swap(kind, self._fitted(kind, merged.values()))
                return
            with self._lock.writing():
                if deletes:
                    current.delete(deletes)
                if upserts:
                    current.upsert(upserts)
                current.prepare()
                self.version += 1

    def replace(self, kind: Kind, records: Iterable[Record]) -> None:
        """Index one side from scratch with exactly these records."""
        with self._writers:
            self._swap(kind, self._fitted(kind, records))

    def _fitted(self, kind: Kind, records: Iterable[Record]) -> HybridIndex:
        index = new_index(kind, self.settings)
        records = list(records)
        if records:
            index.build(records)
            index.prepare()
        return index

    def _swap(self, kind: Kind, index: HybridIndex) -> None:
        with self._lock.writing():
            self.matcher.set_side(kind, index)
            self.version += 1

    def reload_grader(self) -> None:
        """Pick up a grader installed into the folder since the engine was opened (a damaged one is left out)."""
        if self.folder is None:
            return
        grader = Matcher._load_grader(self.folder, strict=False)
        with self._lock.writing():
            self.matcher.grader = grader
            self.version += 1

    def save(self, folder: str | Path | None = None) -> None:
        """Write the index folder (``Matcher.save``).

        It holds its own lock and the writers' lock (no change can happen meanwhile, so the folder is one
        consistent state), never the search lock: searches are read-only and go on, and a change waiting
        for the save does not queue the searches behind it (as a waiting writer on the search lock would)."""
        target = Path(folder) if folder is not None else self.folder
        if target is None:
            raise ValueError("this engine has no folder: give one to save to")
        with self._saving, self._writers:
            self.matcher.save(target)
