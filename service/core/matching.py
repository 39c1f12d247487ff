"""Searches on the live index under its read lock, graded (when a grader is installed) and serialised."""

from __future__ import annotations

from typing import Any

from recommender.filters import ResultFilters
from recommender.records import Kind, Record
from service.core.errors import ServiceError
from service.core.live_index import LiveIndex


def _grade(live: LiveIndex, query_id: str, matches: list, kind: Kind, query: Record | None = None) -> None:
    from recommender.learning.grading import attach_grades

    attach_grades(live.matcher, query_id, matches, kind, query=query)


def results_for(live: LiveIndex, need: Record, k: int, filters: ResultFilters | None = None,
                explain: bool = True) -> list[dict[str, Any]]:
    """Top-k results for a need's text, with each match's signals, shared terms and record.

    Unfiltered searches go through the batcher (concurrent requests share one index call). ``need`` may be
    a stored need or free text wrapped in a Record; the grader (if installed) grades against it."""
    live.catch_up()  # writes other worker processes committed since this one last searched
    query = need.as_query()
    if (filters is None or not filters.active()) and live.batcher is not None:
        matches = live.batcher.search(query, k, explain)
        with live.lock.reading():
            _grade(live, need.id, matches, "result", need)
    else:
        with live.lock.reading():
            matches = live.matcher.results.search([query], k, filters=filters, explain=explain)[0]
            _grade(live, need.id, matches, "result", need)
    return [m.to_dict("result", with_record=True) for m in matches]


def needs_for(live: LiveIndex, result: Record, k: int, explain: bool = True) -> list[dict[str, Any]]:
    """Top-k stored needs a result answers (the reverse direction)."""
    live.catch_up()
    with live.lock.reading():
        if not len(live.side("need")):
            raise ServiceError("no needs are stored yet: add needs before matching results to them", 409)
        matches = live.side("need").search([result.as_query()], k, explain=explain)[0]
        _grade(live, result.id, matches, "need")
    return [m.to_dict("need", with_record=True) for m in matches]
