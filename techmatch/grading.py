"""Attach a learned grade (and its probability) to matches, where a grader has been installed.

The grader itself lives in ``recommender.learning``; an index folder without one shows no grade.
"""

from __future__ import annotations

from typing import Any


def attach_grades(matcher: Any, query_id: str, matches: list[Any], kind: str) -> None:
    """Fill ``grade``/``grade_probability`` of each match from the matcher's grader, if it has one."""
    grader = getattr(matcher, "grader", None)
    if grader is None or not matches:
        return
    grader.annotate(matcher, query_id, matches, kind)
