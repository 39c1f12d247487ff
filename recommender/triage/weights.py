"""Every weight and threshold of the triage, in one place, with the reason for each.

A broker who disagrees with the shortlist should be able to read this file and see what to change.
Scores are all in [0, 1]; the transferability of a result is

    score = MARKET_PULL_WEIGHT * market_pull + READINESS_WEIGHT * readiness

market_pull (how strongly, and by how many needs, the result is wanted) comes from the matching pipeline:
every need is matched against the whole corpus and each (need, result) pair gets a *strength*, normalised
per need (the best candidate of a need has strength 1, lower ones less), because a broker pushes a result
to an enterprise when it is among the best answers to that enterprise's problem, whatever the absolute
similarity values of that need are.

    market_pull = STRONGEST_NEED_WEIGHT * max strength + BREADTH_WEIGHT * (1 - exp(-sum of strengths / BREADTH_SCALE))

readiness (how soon it can be used) comes from the record fields where present; a missing field counts as
NEUTRAL_READINESS so that a corpus without them is ranked by market pull alone.
"""

from __future__ import annotations

# -- transferability ----------------------------------------------------------------------------
#: Market pull and readiness weigh the same: the harbour's managers picked results that are both wanted
#: and usable; neither alone makes a transfer.
MARKET_PULL_WEIGHT = 0.5
READINESS_WEIGHT = 0.5

# -- market pull --------------------------------------------------------------------------------
#: The single strongest need matters most: one enterprise that badly needs a result is a deal.
STRONGEST_NEED_WEIGHT = 0.7
#: Several needs wanting it (breadth) is a bonus, saturating so that a generic result that weakly
#: matches hundreds of needs does not beat a precise answer to a few.
BREADTH_WEIGHT = 0.3
#: Sum of strengths at which breadth reaches 1 - 1/e (~63%): about three strong needs.
BREADTH_SCALE = 3.0
#: Candidates read per need: a result below this rank of a need is not pushed to it.
CANDIDATES_PER_NEED = 50
#: Strength of a (need, result) pair from its rank among the need's candidates: 1 / (1 + (rank-1) / RANK_HALF_LIFE)
#: (rank 1 -> 1.0, rank 1 + RANK_HALF_LIFE -> 0.5). Used when no learned grader is given.
RANK_HALF_LIFE = 5.0
#: Blend of that rank strength with the fused score relative to the need's best (score / best score): the
#: ratio keeps a close second close, the rank keeps the scale comparable across needs.
RANK_STRENGTH_SHARE = 0.5
#: With a learned grader (``learned_strengths``, blend "rank_and_market", the default since issue 12):
#: strength = LEARNED_RANK_SHARE * the zero-shot rank strength + the rest * p / (best p of the market),
#: p = P(grade 3) of the pair. The grader's probabilities are comparable across the needs it was trained on,
#: not across new needs; the rank part keeps new needs on one scale (bdci2019 dev, split by need:
#: precision@K 0.214 against 0.145 for the blend "per_need" below; eval/benchmarks/TRIAGE.md).
LEARNED_BLEND = "rank_and_market"
LEARNED_RANK_SHARE = 0.5
#: Blend "per_need" (before issue 12): strength = LEARNED_RELATIVE_SHARE * p / (best p of the need) + the rest * p,
#: p = P(grade 3) of the pair: relative to the need's other candidates, and absolute so that the best of
#: a hopeless need does not count as a strong answer.
LEARNED_RELATIVE_SHARE = 0.5
#: Needs that state a budget (万元) pull harder: strength is scaled by
#: (1 - BUDGET_EMPHASIS) + BUDGET_EMPHASIS * log1p(budget) / log1p(largest budget); a need without a budget counts
#: as half-way.
BUDGET_EMPHASIS = 0.3
#: Needs listed per shortlisted result (top_need_ids) and enterprises pushed to.
TOP_NEEDS_PER_RESULT = 5

# -- readiness ----------------------------------------------------------------------------------
TRL_WEIGHT = 0.6  # technology readiness 1-9, scaled to (trl - 1) / 8
IP_WEIGHT = 0.4  # protected IP is what can be licensed or assigned
NEUTRAL_READINESS = 0.5  # a field the record does not carry
#: ip_status values (English and the usual Chinese) -> score; anything else counts as neutral.
IP_STATUS_SCORES: dict[str, float] = {
    "granted": 1.0, "已授权": 1.0, "授权": 1.0, "有效": 1.0,
    "pending": 0.5, "申请中": 0.5, "实审": 0.5, "实质审查": 0.5, "公开": 0.5, "受理": 0.5,
    "none": 0.0, "无": 0.0, "未申请": 0.0, "失效": 0.0,
}

# -- funds --------------------------------------------------------------------------------------
#: Investment stage a result of a given TRL fits: seed money proves a principle, angel money builds
#: a prototype, A rounds scale a product that works.
STAGE_TRL: dict[str, tuple[int, int]] = {"seed": (2, 5), "angel": (4, 7), "A": (6, 9), "B": (7, 9)}
SECTOR_WEIGHT = 0.6  # a fund outside the result's sector is never pushed to
STAGE_WEIGHT = 0.4  # stage fits the TRL: 1; one TRL off the range: 0.5; else 0; TRL unknown: NEUTRAL_READINESS
FUNDS_PER_RESULT = 5
