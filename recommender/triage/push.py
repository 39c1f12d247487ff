"""Two-way push: the enterprises and funds a result should go to, and the results a need should be sent.

Enterprises are found through their needs (the matcher's needs index, searched with the result's text);
funds through their sectors and stages (funds.match_funds). Unknown ids raise UnknownIdError, an index
without needs raises EmptyIndexError: both say what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recommender.errors import EmptyIndexError
from recommender.hybrid import Match
from recommender.matcher import Matcher
from recommender.triage.enterprises import enterprise_of
from recommender.triage.funds import Fund, match_funds
from recommender.triage.targets import PushTarget

NEEDS_READ_PER_ENTERPRISE = 3  # needs read per wanted enterprise: one firm often posts several needs


def _require_needs(matcher: Matcher) -> None:
    if matcher.needs is None or not len(matcher.needs):
        raise EmptyIndexError("this index holds no needs: build it with 'techmatch index --results R --needs N'")


def push_for_result(
    matcher: Matcher, result_id: str, funds: Sequence[Fund] = (), k: int = 10,
    enterprises: Mapping[str, dict] | None = None,
) -> list[PushTarget]:
    """Up to k enterprises (best need first) and up to k funds for one result, each with its reason."""
    if k < 1:
        raise ValueError("k must be at least 1")
    record = matcher.result_record(result_id)
    targets: list[PushTarget] = []
    if matcher.needs is not None and len(matcher.needs):
        matches = matcher.match_results([record], k * NEEDS_READ_PER_ENTERPRISE)[0]
        best = matches[0].score if matches else 1.0
        seen: set[str] = set()
        for m in matches:
            need = m.record
            ent_id, name = enterprise_of(need, enterprises)
            if ent_id in seen:
                continue
            seen.add(ent_id)
            reason = f"need {need.id}「{need.title}」: rank #{m.rank} of the needs for this result"
            if m.shared_terms:
                reason += f"; shared terms: {'、'.join(m.shared_terms[:5])}"
            targets.append(PushTarget("enterprise", ent_id, name, m.score / best, reason, need.id))
            if len(seen) == k:
                break
    elif not funds:
        _require_needs(matcher)
    targets += match_funds(record, funds, k) if funds else []
    return targets


def push_for_need(matcher: Matcher, need_id: str, k: int = 10, collapse: bool = True) -> list[Match]:
    """The k results to send to the enterprise behind one need (the need must be in the index); a duplicate
    group counts once (its other members in ``Match.duplicates``) unless ``collapse`` is off."""
    if k < 1:
        raise ValueError("k must be at least 1")
    _require_needs(matcher)
    need = matcher.need_record(need_id)
    return matcher.match_needs([need], k, collapse=collapse)[0]
