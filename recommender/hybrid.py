"""A hybrid index over one side's records: several signals, fused by weighted reciprocal rank fusion.

It owns the records (so every match can carry its title and explanation), keeps the signals in step on
every add, update and delete, and saves to a folder whose manifest names the model and the signals.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embeddings.tokenizer import get_tokenizer
from recommender.ann.base import IndexLoadError, read_manifest, write_manifest
from recommender.duplicates import DuplicateGroups
from recommender.explain import shared_key_terms
from recommender.filters import ResultFilters, filter_values
from recommender.fusion import RRF_K, reciprocal_rank_fusion
from recommender.records import Kind, Record, parse_record
from recommender.signal import Commit, Hits, Signal, Texts, TextsLike, as_texts

RECORDS_FILE = "records.jsonl"
_HELPERS = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="techmatch-signal")


@dataclass
class SignalScore:
    """One signal's own view of a match: its score and its rank (None: outside its candidate list)."""

    score: float
    rank: int | None


@dataclass
class Match:
    """One ranked match with everything a broker needs to judge it."""

    id: str
    title: str
    score: float
    rank: int
    signals: dict[str, SignalScore]
    shared_terms: list[str]
    record: Record = field(repr=False)
    grade: int | None = None
    grade_probability: float | None = None
    duplicates: list[str] = field(default_factory=list)  # the other members of its duplicate group, folded

    def to_dict(self, kind: Kind, with_record: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rank": self.rank, "id": self.id, "title": self.title, "score": round(self.score, 6),
            "signals": {k: {"score": round(v.score, 6), "rank": v.rank} for k, v in self.signals.items()},
            "shared_terms": self.shared_terms, "duplicates": list(self.duplicates),
        }
        if self.grade is not None:
            out["grade"] = self.grade
            out["grade_probability"] = None if self.grade_probability is None else round(self.grade_probability, 4)
        if with_record:
            out["record"] = self.record.to_dict(kind)
        return out


class HybridIndex:
    """Records of one kind plus their signals; ``search`` returns fused, explained matches."""

    def __init__(
        self, kind: Kind, signals: Sequence[Signal], weights: Mapping[str, float] | None = None,
        rrf_k: int = RRF_K, depth: int = 200,
    ) -> None:
        self.kind = kind
        self.signals = {s.name: s for s in signals}
        self.weights = {name: float((weights or {}).get(name, 1.0)) for name in self.signals}
        self.rrf_k = rrf_k
        self.depth = depth
        self.records: dict[str, Record] = {}
        self.timings: dict[str, float] = {}
        self.duplicates = DuplicateGroups()
        self._lines: dict[str, tuple[Record, str]] = {}  # id -> (record, its line in records.jsonl)

    # -- changes ------------------------------------------------------------------------------
    def build(self, records: Sequence[Record]) -> None:
        """Index these records from scratch (replacing anything indexed before)."""
        self.records = {r.id: r for r in records}
        ids, docs = list(self.records), [r.as_passage() for r in self.records.values()]
        metadata = [filter_values(r) for r in self.records.values()]
        for name, signal in self.signals.items():
            start = time.perf_counter()
            signal.fit(ids, docs, metadata)
            self.timings[f"fit_{name}"] = time.perf_counter() - start
        start = time.perf_counter()
        self.duplicates.build((r.id, r.title) for r in self.records.values())
        self.timings["duplicates"] = time.perf_counter() - start

    def upsert(self, records: Sequence[Record]) -> None:
        """Add new records or replace existing ones, in every signal, without a rebuild."""
        if not records:
            return
        if not self.records:
            self.build(records)
            return
        for r in records:
            self.records[r.id] = r
        ids, docs = [r.id for r in records], [r.as_passage() for r in records]
        metadata = [filter_values(r) for r in records]
        for signal in self.signals.values():
            signal.upsert(ids, docs, metadata)
        self.duplicates.upsert((r.id, r.title) for r in records)

    def stage(self, upserts: Sequence[Record], deletes: Sequence[str] = ()) -> Commit:
        """``delete`` then ``upsert``, staged: every signal does the costly part now, beside the live index
        (``Signal.stage``), and the returned commit applies the change (the caller holds the write lock and
        lets no other change in between). Searches go on meanwhile and wait only for the commit."""
        gone = [i for i in dict.fromkeys(deletes) if i in self.records]
        upserts = list({r.id: r for r in upserts}.values())
        if not self.records or len(gone) >= len(self.records):
            def rebuild() -> None:  # every record deleted: nothing to keep in step, build afresh
                self.delete(gone)
                self.upsert(upserts)
                self.prepare()
            return rebuild
        ids, docs = [r.id for r in upserts], [r.as_passage() for r in upserts]
        metadata = [filter_values(r) for r in upserts]
        commits = [signal.stage(ids, docs, metadata, gone) for signal in self.signals.values()]
        duplicates = self.duplicates.stage([(r.id, r.title) for r in upserts], gone)

        def commit() -> None:
            for i in gone:
                del self.records[i]
            self.records.update((r.id, r) for r in upserts)
            for apply in commits:
                apply()
            duplicates()
        return commit

    def delete(self, ids: Sequence[str]) -> int:
        present = [i for i in ids if i in self.records]
        for i in present:
            del self.records[i]
        for signal in self.signals.values():
            signal.delete(present)
        self.duplicates.delete(present)
        return len(present)

    @property
    def shared_storage(self) -> bool:
        """Whether any signal keeps its state in a store several processes share (see ``Signal.shared_storage``)."""
        return any(s.shared_storage for s in self.signals.values())

    def prepare(self) -> None:
        """Rebuild every signal's lazy structures now (after a change), not in the next search."""
        for signal in self.signals.values():
            signal.prepare()

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self.records

    # -- queries ------------------------------------------------------------------------------
    def search(
        self, queries: Sequence[TextsLike], k: int = 10, filters: ResultFilters | None = None,
        exclude: Sequence[set[str]] | None = None, explain: bool = True, collapse: bool = False,
    ) -> list[list[Match]]:
        """Top-k fused matches per query text; filters narrow by record fields.

        A signal that filters inside its index (``filters_pushdown``: dense on Milvus) is searched as deep as
        without filters; the others are searched deeper and their candidates filtered here. When any signal
        pushed the filter down, every signal's candidates are then cut to the accepted ones before fusion,
        so each rank is a rank among accepted records (as if only they were indexed); without one (FAISS),
        the ranks are ranks among all records, as before.
        """
        return self.search_with_hits(queries, k, filters, exclude, explain, collapse=collapse)[0]

    def search_with_hits(
        self, queries: Sequence[TextsLike], k: int = 10, filters: ResultFilters | None = None,
        exclude: Sequence[set[str]] | None = None, explain: bool = True, hit_depth: int = 0,
        collapse: bool = False,
    ) -> tuple[list[list[Match]], list[dict[str, Hits]]]:
        """``search``, plus each signal's own candidate list per query, at least ``hit_depth`` long.

        Without filters the lists are what a learned grader reads (each signal's ranks and score statistics
        over the corpus), so grading the matches costs no second search; with filters they may be filtered,
        so a grader must not read them. Fusion reads only each list's top ``depth`` (deeper with filters on
        FAISS), so the matches are the same whatever ``hit_depth`` is. With ``collapse`` a duplicate group
        shows once, as its best-ranked accepted member, with the other members' ids in ``Match.duplicates``."""
        if filters is not None and not filters.active():
            filters = None
        queries = [as_texts(q) for q in queries]
        if not queries or not self.records:
            return [[] for _ in queries], [{} for _ in queries]
        depth = max(self.depth, k)
        per_signal, fuse_depth = self._candidates(queries, depth, filters, hit_depth)
        tokenizer = get_tokenizer() if explain else None
        out: list[list[Match]] = []
        hits_out: list[dict[str, Hits]] = []
        for qi, query in enumerate(queries):
            hits_out.append({name: hits[qi] for name, hits in per_signal.items()})
            rankings = {name: hits[qi][:fuse_depth] for name, hits in per_signal.items()}
            own = {name: {d: (r, s) for r, (d, s) in enumerate(hits, start=1)} for name, hits in rankings.items()}
            fused = reciprocal_rank_fusion(rankings, self.weights, self.rrf_k)
            skip = exclude[qi] if exclude else set()
            chosen: list[tuple[str, float]] = []
            seen_groups: set[str] = set()
            for doc_id, score in fused:
                record = self.records.get(doc_id)
                if record is None or doc_id in skip or (filters is not None and not filters.accepts(record)):
                    continue
                if collapse:
                    group = self.duplicates.group_of(doc_id)
                    if group in seen_groups:
                        continue
                    seen_groups.add(group)
                chosen.append((doc_id, score))
                if len(chosen) == k:
                    break
            terms = tokenizer.key_terms(query.text, 12) if tokenizer is not None else []
            matches = []
            for rank, (doc_id, score) in enumerate(chosen, start=1):
                record = self.records[doc_id]
                signals = {}
                for name in rankings:
                    r, s = own[name].get(doc_id, (None, 0.0))
                    signals[name] = SignalScore(float(s), r)
                shared = shared_key_terms(query.text, record.text, query_terms=terms) if explain else []
                folded = [m for m in self.duplicates.members(doc_id) if m != doc_id] if collapse else []
                matches.append(Match(doc_id, record.title, score, rank, signals, shared, record, duplicates=folded))
            self._fill_missing_scores(query, matches)
            out.append(matches)
        return out, hits_out

    def _candidates(
        self, queries: list[Texts], depth: int, filters: ResultFilters | None = None, hit_depth: int = 0,
    ) -> tuple[dict[str, list], int]:
        """Each weighted signal's candidates per query (see ``search`` for filters), at least ``hit_depth``
        long without filters, and how deep fusion reads them. Signals that run outside the GIL (dense) work in a
        helper thread while the others (mostly Python) work here, so one batch keeps two cores busy."""
        active = [(name, s) for name, s in self.signals.items() if self.weights[name] > 0]
        pushed = {name for name, s in active if filters is not None and s.filters_pushdown}
        deep = depth if filters is None else min(len(self.records), max(depth * 5, 1000))
        fuse_depth = depth if pushed else deep

        def run(name: str, signal: Signal) -> list:
            if name in pushed:
                return signal.search(queries, depth, filters)
            return signal.search(queries, max(deep, hit_depth))

        aside = {name: _HELPERS.submit(run, name, s) for name, s in active if s.runs_outside_gil and len(active) > 1}
        here = {name: run(name, s) for name, s in active if name not in aside}
        out = {name: aside[name].result() if name in aside else here[name] for name, _ in active}
        if pushed and filters is not None:
            for name in out.keys() - pushed:
                out[name] = [[(d, s) for d, s in hits if d in self.records and filters.accepts(self.records[d])][:depth]
                             for hits in out[name]]
        return out, fuse_depth

    def _fill_missing_scores(self, query: Texts, matches: list[Match]) -> None:
        """A match outside one signal's candidate list still gets that signal's true score."""
        for name, signal in self.signals.items():
            missing = [m for m in matches if name in m.signals and m.signals[name].rank is None]
            if missing:
                values = signal.score([query], [[m.id for m in missing]])[0]
                for m, v in zip(missing, values):
                    m.signals[name].score = float(v)

    def score_pairs(self, queries: Sequence[TextsLike], ids: Sequence[Sequence[str]]) -> dict[str, list]:
        """Every signal's score for given (query, ids) pairs: the features a learned grader uses."""
        queries = [as_texts(q) for q in queries]
        return {name: signal.score(queries, ids) for name, signal in self.signals.items()}

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / RECORDS_FILE).open("w", encoding="utf-8") as handle:
            handle.writelines(self._record_lines())
        files = [RECORDS_FILE]
        for signal in self.signals.values():
            files += signal.save(folder)
        files += self.duplicates.save(folder)
        dense = [s for s in self.signals.values() if hasattr(s, "embedder")]
        info = {
            "kind": f"hybrid-{self.kind}", "model": dense[0].embedder.name if dense else None,
            "count": len(self.records), "signals": list(self.signals), "weights": self.weights,
            "rrf_k": self.rrf_k, "depth": self.depth, **(extra or {}),
        }
        write_manifest(folder, info, files)

    def _record_lines(self) -> list[str]:
        """Each record's JSON line, encoded once per record object: the background save of a large side
        re-encodes only what changed (30,000 records: 0.85 s of interpreter time every save otherwise)."""
        lines, cache = [], self._lines
        for doc_id, record in self.records.items():
            cached = cache.get(doc_id)
            if cached is None or cached[0] is not record:
                cached = cache[doc_id] = (record, json.dumps(record.to_dict(self.kind), ensure_ascii=False) + "\n")
            lines.append(cached[1])
        if len(cache) > len(self.records):
            for doc_id in [d for d in cache if d not in self.records]:
                del cache[doc_id]
        return lines

    def load(self, folder: str | Path) -> dict[str, Any]:
        """Load state saved by ``save`` into these (already configured) signals."""
        folder = Path(folder)
        dense = [s for s in self.signals.values() if hasattr(s, "embedder")]
        info = read_manifest(folder, f"hybrid-{self.kind}", dense[0].embedder.name if dense else None)
        if set(info["signals"]) != set(self.signals):
            raise IndexLoadError(f"{folder}: index has signals {info['signals']}, expected {list(self.signals)}")
        records, lines = {}, {}
        with (folder / RECORDS_FILE).open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                location = f"line {number}"
                record, problems = parse_record(json.loads(line), self.kind, str(folder / RECORDS_FILE), location)
                if record is None:
                    raise IndexLoadError(f"{folder}: damaged records file ({problems[0]})")
                records[record.id] = record
                lines[record.id] = (record, line if line.endswith("\n") else line + "\n")
        self.records = records
        self._lines = lines  # the next save writes these again rather than encoding 30,000 records anew
        for signal in self.signals.values():
            signal.load(folder)
        self.duplicates.load(folder, {r.id: r.title for r in records.values()})
        self.weights = {k: float(v) for k, v in info.get("weights", self.weights).items()}
        self.rrf_k = int(info.get("rrf_k", self.rrf_k))
        self.depth = int(info.get("depth", self.depth))
        return info

