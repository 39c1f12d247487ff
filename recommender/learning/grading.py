"""Attach a learned grade (and its probability) to matches, where a grader has been installed.

The grader itself lives in ``recommender.learning``; an index folder without one (no ``grader/``
sub-folder, see ``techmatch train``) shows no grade. Every caller that shows matches (CLI, API) goes
through here, so a match shown anywhere carries the same grade.
"""

from __future__ import annotations

from typing import Any


def attach_grades(matcher: Any, query_id: str, matches: list[Any], kind: str, query: Any | None = None) -> None:
    """Fill ``grade``/``grade_probability`` of each match from the matcher's grader, if it has one.

    kind 'result': ``matches`` are results for a need; pass the need's ``Record`` as ``query`` when it is
    not an indexed need (free text, an uploaded file), else it is looked up by ``query_id``.
    kind 'need': ``matches`` are needs for the indexed result ``query_id``.
    """
    grader = getattr(matcher, "grader", None)
    if grader is None or not matches:
        return
    grader.annotate(matcher, query_id, matches, kind, query=query)
