"""The shortlist: every result ranked by transferability (market pull and readiness), top K kept, each with
the enterprises and funds it should be pushed to and the reasons a broker can read out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from embeddings.tokenizer import get_tokenizer
from recommender.duplicates import DuplicateGroups
from recommender.explain import shared_key_terms
from recommender.matcher import Matcher
from recommender.records import Record
from recommender.triage import weights as W
from recommender.triage.enterprises import enterprise_of
from recommender.triage.funds import Fund, match_funds
from recommender.triage.market import Candidate, Grader, MarketPull, Progress, market_pull
from recommender.triage.readiness import readiness, readiness_reason, trl_of
from recommender.triage.targets import PushTarget


def transferability(pull: float, ready: float) -> float:
    """The one formula that ranks the shortlist (weights.MARKET_PULL_WEIGHT / READINESS_WEIGHT)."""
    return W.MARKET_PULL_WEIGHT * pull + W.READINESS_WEIGHT * ready


@dataclass
class ShortlistEntry:
    """One shortlisted result, why it is there, and who should hear about it."""

    rank: int
    result_id: str
    title: str
    score: float
    market_pull: float
    readiness: float
    top_need_ids: list[str]
    push: list[PushTarget] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    record: Record | None = field(default=None, repr=False)
    duplicate_ids: list[str] = field(default_factory=list)  # its duplicate group's other results, counted once

    def to_row(self) -> dict[str, Any]:
        """One CSV/Excel row: the contract's columns first, then what a broker reads."""
        extra = self.record.extra if self.record is not None else {}
        enterprises = [t for t in self.push if t.kind == "enterprise"]
        funds = [t for t in self.push if t.kind == "fund"]
        return {
            "rank": self.rank, "result_id": self.result_id, "score": round(self.score, 4),
            "top_need_ids": ";".join(self.top_need_ids), "title": self.title,
            "duplicate_ids": ";".join(self.duplicate_ids),
            "market_pull": round(self.market_pull, 4), "readiness": round(self.readiness, 4),
            "trl": extra.get("trl"), "ip_status": extra.get("ip_status"), "field": extra.get("field"),
            "institution": extra.get("institution"),
            "enterprises": ";".join(f"{t.name}({t.id})" for t in enterprises),
            "funds": ";".join(f"{t.name}({t.id})" for t in funds),
            "reasons": " | ".join(self.reasons),
        }

    def to_dict(self) -> dict[str, Any]:
        row = self.to_row()
        row["top_need_ids"] = list(self.top_need_ids)
        row["duplicate_ids"] = list(self.duplicate_ids)
        row["push"] = [t.to_dict() for t in self.push]
        row["reasons"] = list(self.reasons)
        return row


@dataclass
class ScoredResult:
    """A result's transferability before the cut: used for the shortlist and for measuring it."""

    result_id: str
    score: float
    pull: float
    readiness: float


def score_results(results: Mapping[str, Record], market: MarketPull) -> list[ScoredResult]:
    """Every result scored, best first (ties by id, so the order is deterministic)."""
    scored = []
    for rid, record in results.items():
        pull = market.pull.get(rid, 0.0)
        ready = readiness(record)
        scored.append(ScoredResult(rid, transferability(pull, ready), pull, ready))
    scored.sort(key=lambda s: (-s.score, s.result_id))
    return scored


def enterprise_targets(
    record: Record, wanted: Sequence[Candidate], needs: Mapping[str, Record],
    enterprises: Mapping[str, dict] | None = None, k: int = W.TOP_NEEDS_PER_RESULT,
    key_terms: dict[str, list[str]] | None = None,
) -> list[PushTarget]:
    """The enterprises behind the strongest needs for this result (one target per enterprise).

    A need without an ``enterprise`` field stands for its own (unnamed) enterprise: the target's id is
    then the need id, so the broker still knows whom to call.
    """
    out: list[PushTarget] = []
    seen: set[str] = set()
    for cand in wanted:
        need = needs.get(cand.need_id)
        if need is None:
            continue
        ent_id, name = enterprise_of(need, enterprises)
        if ent_id in seen:
            continue
        seen.add(ent_id)
        terms = shared_key_terms(need.query_text, record.text, query_terms=(key_terms or {}).get(need.id))
        reason = f"need {need.id}「{need.title}」ranks it #{cand.rank} (strength {cand.strength:.2f})"
        if terms:
            reason += f"; shared terms: {'、'.join(terms[:5])}"
        out.append(PushTarget("enterprise", ent_id, name, cand.strength, reason, need.id))
        if len(out) == k:
            break
    return out


def shortlist_reasons(record: Record, wanted: Sequence[Candidate], pull: float, ready: float) -> list[str]:
    strong = [c for c in wanted if c.strength >= 0.5]
    reasons = []
    if wanted:
        best = wanted[0]
        reasons.append(
            f"market pull {pull:.2f}: {len(strong)} need(s) want it strongly, {len(wanted)} in all; "
            f"strongest {best.need_id} (rank #{best.rank}, strength {best.strength:.2f})"
        )
    else:
        reasons.append("no need ranks it among its candidates")
    why_ready = readiness_reason(record)
    reasons.append(f"readiness {ready:.2f}" + (f": {why_ready}" if why_ready else " (no trl/ip_status recorded)"))
    return reasons


def progress_stages(
    on_progress: Progress | None, market_steps: int, push_steps: int
) -> tuple[Progress | None, Progress | None]:
    """One ``on_progress(done, total)`` bar over the two stages of a shortlist: the market pull (needs matched,
    then graded: ``market_steps``) and the push lists (``push_steps``). Returns each stage's own callback."""
    if on_progress is None:
        return None, None
    total = market_steps + push_steps

    def market(done: int, _: int) -> None:
        on_progress(done, total)

    def push(done: int, _: int) -> None:
        on_progress(market_steps + done, total)

    return market, push


def market_steps(needs: int, graded: bool) -> int:
    """How many steps the market pull reports: each need matched, and graded too with a grader."""
    return needs * (2 if graded else 1)


def shortlist(
    matcher: Matcher, needs: Sequence[Record], top: int, funds: Sequence[Fund] = (),
    enterprises: Mapping[str, dict] | None = None, grader: Grader | None = None, progress: bool = True,
    on_progress: Progress | None = None,
) -> list[ShortlistEntry]:
    """The ``top`` most transferable results of the matcher's results index, with push lists and reasons.

    ``on_progress(done, total)``, if given, is called as the work advances (needs matched, needs graded,
    push lists written), ending with done == total: what a background job shows as its progress bar."""
    if top < 1:
        raise ValueError("top must be at least 1")
    on_market, on_push = progress_stages(on_progress, market_steps(len(needs), grader is not None),
                                         min(top, len(matcher.results.records)))
    market = market_pull(matcher.results, needs, grader=grader, progress=progress, on_progress=on_market)
    return shortlist_from_market(matcher.results.records, market, top, funds, enterprises, progress, on_push,
                                 matcher.results.duplicates)


def shortlist_from_market(
    results: Mapping[str, Record], market: MarketPull, top: int, funds: Sequence[Fund] = (),
    enterprises: Mapping[str, dict] | None = None, progress: bool = True, on_progress: Progress | None = None,
    duplicates: DuplicateGroups | None = None,
) -> list[ShortlistEntry]:
    """The shortlist given the market pull already measured: the cheap part (scores, push lists, reasons),
    so a live index can keep the expensive pull per index version and answer every shortlist from it.
    ``on_progress(done, total)`` counts push lists written. With ``duplicates`` a duplicate group takes one
    row (its best-scored member), the others' ids in ``duplicate_ids``."""
    if top < 1:
        raise ValueError("top must be at least 1")
    ranked = score_results(results, market)
    if duplicates is not None:
        seen: set[str] = set()
        ranked = [s for s in ranked if not (duplicates.group_of(s.result_id) in seen
                                            or seen.add(duplicates.group_of(s.result_id)))]
    ranked = ranked[:top]
    key_terms: dict[str, list[str]] = {}
    entries = []
    tokenizer = get_tokenizer()
    for position, scored in enumerate(tqdm(ranked, desc="push lists", unit="result", disable=not progress), 1):
        record = results[scored.result_id]
        wanted = market.wanted_by.get(scored.result_id, [])
        for cand in wanted[:W.TOP_NEEDS_PER_RESULT]:
            if cand.need_id not in key_terms and cand.need_id in market.needs:
                key_terms[cand.need_id] = tokenizer.key_terms(market.needs[cand.need_id].query_text, 12)
        push = enterprise_targets(record, wanted, market.needs, enterprises, key_terms=key_terms)
        push += match_funds(record, funds) if funds else []
        entries.append(ShortlistEntry(
            rank=position, result_id=record.id, title=record.title, score=scored.score,
            market_pull=scored.pull, readiness=scored.readiness,
            top_need_ids=[c.need_id for c in wanted[:W.TOP_NEEDS_PER_RESULT]], push=push,
            reasons=shortlist_reasons(record, wanted, scored.pull, scored.readiness), record=record,
            duplicate_ids=[d for d in duplicates.members(record.id) if d != record.id and d in results]
            if duplicates is not None else [],
        ))
        if on_progress is not None and (position % 25 == 0 or position == len(ranked)):
            on_progress(position, len(ranked))
    if on_progress is not None and not ranked:
        on_progress(0, 0)
    return entries


__all__ = [
    "ScoredResult", "ShortlistEntry", "market_steps", "progress_stages", "score_results", "shortlist",
    "shortlist_from_market", "transferability", "trl_of",
]
