"""Market pull: how strongly, and by how many needs, each result is wanted, from the matching pipeline.

Every need is matched against the whole results index in batches (the signals batch many queries at
once, which is what keeps a 2,500-need triage under two minutes). Each (need, result) candidate gets a
*strength* normalised per need, because "the best answer this enterprise can get" is what makes a push
worth a phone call, whatever the absolute similarity values of that need are; a learned grader, when
given, blends its P(grade 3) into the rank-based strength (see weights.py for every constant).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from recommender.hybrid import HybridIndex
from recommender.records import Record
from recommender.triage import weights as W

SEARCH_BATCH = 256  # also the step of on_progress while matching: a smaller batch would move the dense scores
Guard = Callable[[], AbstractContextManager[Any]]
Progress = Callable[[int, int], None]  # on_progress(done, total): called as work advances (a page's progress bar)


class Grader(Protocol):
    """What the learned grader offers (recommender.learning): grade probabilities for (need, result) pairs."""

    def predict_proba(self, index: HybridIndex, queries: Sequence[Record], result_ids: Sequence[str]) -> Any: ...


@dataclass
class Candidate:
    """One result among one need's candidates."""

    need_id: str
    result_id: str
    rank: int
    fused: float
    strength: float = 0.0


@dataclass
class MarketPull:
    """Per result: its pull in [0, 1] and the needs that want it, strongest first."""

    pull: dict[str, float]
    wanted_by: dict[str, list[Candidate]] = field(default_factory=dict)
    needs: dict[str, Record] = field(default_factory=dict)


def rank_candidates(
    index: HybridIndex, needs: Sequence[Record], depth: int = W.CANDIDATES_PER_NEED, progress: bool = True,
    guard: Guard = nullcontext, on_progress: Progress | None = None,
) -> dict[str, list[Candidate]]:
    """Each need's top ``depth`` results (fused hybrid ranking), searched in batches with a progress bar.

    Each batch runs inside ``guard()`` (a live index's read lock), so a writer waits for one batch at most,
    never for the whole corpus."""
    out: dict[str, list[Candidate]] = {}
    bar = tqdm(total=len(needs), desc="matching needs", unit="need", disable=not progress)
    for start in range(0, len(needs), SEARCH_BATCH):
        batch = needs[start:start + SEARCH_BATCH]
        with guard():
            rankings = index.search([n.as_query() for n in batch], depth, explain=False)
        for need, matches in zip(batch, rankings):
            out[need.id] = [Candidate(need.id, m.id, m.rank, m.score) for m in matches]
        bar.update(len(batch))
        if on_progress is not None:
            on_progress(start + len(batch), len(needs))
    bar.close()
    return out


def budget_factors(needs: Sequence[Record]) -> dict[str, float]:
    """Per need, the multiplier of its strengths from its stated budget (weights.BUDGET_EMPHASIS)."""
    budgets: dict[str, float | None] = {}
    for need in needs:
        value = need.extra.get("budget")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
        budgets[need.id] = math.log1p(float(value)) if ok else None
    known = [b for b in budgets.values() if b is not None]
    top = max(known) if known else 0.0
    factors = {}
    for need_id, b in budgets.items():
        share = 0.5 if b is None or top <= 0 else b / top
        factors[need_id] = (1 - W.BUDGET_EMPHASIS) + W.BUDGET_EMPHASIS * share
    return factors


def rank_strengths(candidates: dict[str, list[Candidate]]) -> None:
    """Zero-shot strength: the candidate's rank and fused score relative to its need's best."""
    for cands in candidates.values():
        if not cands:
            continue
        best = cands[0].fused or 1.0
        for c in cands:
            by_rank = 1.0 / (1.0 + (c.rank - 1) / W.RANK_HALF_LIFE)
            c.strength = W.RANK_STRENGTH_SHARE * by_rank + (1 - W.RANK_STRENGTH_SHARE) * (c.fused / best)


LEARNED_BLENDS = ("rank_and_market", "per_need")


def learned_strengths(
    candidates: dict[str, list[Candidate]], grader: Grader, index: HybridIndex, needs: Sequence[Record],
    progress: bool = True, guard: Guard = nullcontext, on_progress: Progress | None = None,
    blend: str = W.LEARNED_BLEND,
) -> None:
    """Strength from the grader's P(grade 3) of each candidate, blended so that it holds on new needs.

    ``rank_and_market`` (the default): LEARNED_RANK_SHARE of the zero-shot rank strength (per need), the rest
    P(grade 3) relative to the best P(grade 3) of the whole market. The grader's probabilities are comparable
    across needs it was trained on, not across new ones (bdci2019 dev, TRIAGE.md: absolute P(grade 3) ranks the
    shortlist at 0.176 for seen needs and 0.107 for new ones), so the per-need rank keeps every new need on one
    scale and the probability re-orders within it. ``per_need`` (the design before issue 12): half P(grade 3)
    relative to the need's best candidate, half absolute."""
    if blend not in LEARNED_BLENDS:
        raise ValueError(f"unknown blend '{blend}': use one of {', '.join(LEARNED_BLENDS)}")
    by_id = {n.id: n for n in needs}
    need_ids = [nid for nid, cands in candidates.items() if cands]
    rank_strengths(candidates)
    probabilities: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(need_ids), desc="grading candidates", unit="need", disable=not progress)
    for start in range(0, len(need_ids), SEARCH_BATCH):
        chunk = need_ids[start:start + SEARCH_BATCH]
        queries = [by_id[nid] for nid in chunk for _ in candidates[nid]]
        ids = [c.result_id for nid in chunk for c in candidates[nid]]
        with guard():
            present = [i for i, rid in enumerate(ids) if rid in index.records]  # a result deleted meanwhile
            proba = np.zeros((len(ids), 2))
            if present:
                found = np.asarray(grader.predict_proba(index, [queries[i] for i in present],
                                                        [ids[i] for i in present]), dtype=float)
                proba = np.zeros((len(ids), found.shape[1]))
                proba[present] = found
        strong = proba[:, -1]
        offset = 0
        for nid in chunk:
            probabilities[nid] = strong[offset:offset + len(candidates[nid])]
            offset += len(candidates[nid])
        bar.update(len(chunk))
        if on_progress is not None:
            on_progress(start + len(chunk), len(need_ids))
    bar.close()
    market_best = max((float(p.max()) for p in probabilities.values() if len(p)), default=0.0) or 1.0
    for nid, p in probabilities.items():
        best = float(p.max()) or 1.0
        for c, value in zip(candidates[nid], p):
            if blend == "per_need":
                share = W.LEARNED_RELATIVE_SHARE
                c.strength = share * float(value) / best + (1 - share) * float(value)
            else:
                share = W.LEARNED_RANK_SHARE
                c.strength = share * c.strength + (1 - share) * float(value) / market_best


def pull_of(strengths: Sequence[float]) -> float:
    """Market pull from the strengths of the needs that want a result: strongest need plus saturating breadth."""
    if not strengths:
        return 0.0
    breadth = 1.0 - math.exp(-sum(strengths) / W.BREADTH_SCALE)
    return W.STRONGEST_NEED_WEIGHT * max(strengths) + W.BREADTH_WEIGHT * breadth


def market_pull(
    index: HybridIndex, needs: Sequence[Record], grader: Grader | None = None,
    depth: int = W.CANDIDATES_PER_NEED, progress: bool = True, guard: Guard = nullcontext,
    on_progress: Progress | None = None, learned_blend: str = W.LEARNED_BLEND,
) -> MarketPull:
    """Match every need, give each candidate its strength, and sum them up per result.

    ``guard`` wraps each batch of index reads (see ``rank_candidates``). ``on_progress(done, total)`` counts
    needs matched, then (with a grader) needs graded: total is the number of needs, twice with a grader."""
    steps = 2 if grader is not None else 1
    match_progress = grade_progress = None
    if on_progress is not None:
        def match_progress(done: int, _: int) -> None:
            on_progress(done, steps * len(needs))

        def grade_progress(done: int, total: int) -> None:
            on_progress(len(needs) + round(done * len(needs) / max(total, 1)), steps * len(needs))
    candidates = rank_candidates(index, needs, depth, progress, guard, match_progress)
    if grader is None:
        rank_strengths(candidates)
    else:
        learned_strengths(candidates, grader, index, needs, progress, guard, grade_progress, learned_blend)
    factors = budget_factors(needs)
    wanted_by: dict[str, list[Candidate]] = {}
    for need_id, cands in candidates.items():
        for c in cands:
            c.strength *= factors[need_id]
            wanted_by.setdefault(c.result_id, []).append(c)
    for cands in wanted_by.values():
        cands.sort(key=lambda c: (-c.strength, c.need_id))
    pull = {rid: pull_of([c.strength for c in cands]) for rid, cands in wanted_by.items()}
    return MarketPull(pull, wanted_by, {n.id: n for n in needs})
