"""TREC-format qrels and run files: the interchange format between retrieval, judging and evaluation.

qrels line: ``need_id 0 result_id grade`` (grade an integer, 0 = not relevant).
run line:   ``need_id Q0 result_id rank score tag``.

Parsing is strict on purpose: a silently mis-parsed judgement file gives plausible but wrong metrics, so every
malformed line raises a ``JudgementFileError`` naming the file, the 1-based line number and the field; so do a
missing file, a folder, a file that is not UTF-8 text and (where a caller asks for it) an empty one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from recommender.errors import TechmatchError

__all__ = [
    "JudgementFileError",
    "Qrels",
    "Run",
    "rank_documents",
    "read_pairs",
    "read_qrels",
    "read_run",
    "write_qrels",
    "write_run",
]

Qrels = dict[str, dict[str, int]]
"""need_id -> {result_id: grade}."""

Run = dict[str, dict[str, float]]
"""need_id -> {result_id: score}; higher score = ranked earlier."""

PathLike = str | os.PathLike[str]


def rank_documents(doc_scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Order one query's results by descending score, ties broken by ascending doc id.

    This is the single ranking rule shared by ``write_run`` and ``recommender.metrics`` so that a run evaluated in
    memory and the same run written to disk and read back give identical metrics.
    """
    return sorted(doc_scores.items(), key=lambda item: (-item[1], item[0]))


class JudgementFileError(TechmatchError, ValueError):
    """A qrels or run file that cannot be used as it is: says which file, line and field."""


def _iter_fields(path: PathLike, what: str) -> Iterable[tuple[int, str, list[str]]]:
    """Yield (line number, raw line, whitespace-split fields), skipping blank lines."""
    file = Path(path)
    if not file.exists():
        raise JudgementFileError(f"{what} file not found: {file}")
    if not file.is_file():
        raise JudgementFileError(f"{what} path is not a file: {file}")
    try:
        with file.open(encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, start=1):
                fields = line.split()
                if fields:
                    yield lineno, line.rstrip("\n"), fields
    except UnicodeDecodeError:
        raise JudgementFileError(f"{file}: not a UTF-8 text {what} file") from None


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{what} must be a non-empty string without whitespace, got {value!r}")


def read_qrels(path: PathLike) -> Qrels:
    """Read a TREC qrels file into ``{need_id: {result_id: grade}}``.

    Judgements with grade 0 are kept (they record that a pair was judged not relevant); conflicting duplicate
    judgements of the same pair are an error rather than a silent last-one-wins.
    """
    qrels: Qrels = {}
    for lineno, line, fields in _iter_fields(path, "qrels"):
        if len(fields) != 4:
            raise JudgementFileError(
                f"{path}, line {lineno}: malformed qrels line, expected 4 fields "
                f"'need_id 0 result_id grade' but got {len(fields)}: {line!r}"
            )
        qid, _iteration, docid, grade_text = fields
        try:
            grade = int(grade_text)
        except ValueError:
            raise JudgementFileError(
                f"{path}, line {lineno}: field 'grade' must be an integer but got "
                f"{grade_text!r}: {line!r}"
            ) from None
        judged = qrels.setdefault(qid, {})
        if docid in judged and judged[docid] != grade:
            raise JudgementFileError(
                f"{path}, line {lineno}: conflicting judgement for ({qid}, {docid}): "
                f"grade {grade} here, {judged[docid]} earlier"
            )
        judged[docid] = grade
    return qrels


def read_pairs(path: PathLike) -> list[tuple[str, str]]:
    """A pairs file (the contract's ``techmatch grade --pairs``): ``need_id<TAB>result_id`` a line (any white
    space between the two is accepted), blank lines skipped."""
    pairs = []
    for lineno, line, fields in _iter_fields(path, "pairs"):
        if len(fields) != 2:
            raise JudgementFileError(
                f"{path}, line {lineno}: malformed pairs line, expected 2 fields 'need_id<TAB>result_id' "
                f"but got {len(fields)}: {line.strip()[:80]!r}"
            )
        pairs.append((fields[0], fields[1]))
    return pairs


def write_qrels(qrels: Mapping[str, Mapping[str, int]], path: PathLike) -> Path:
    """Write qrels in TREC format, sorted by need id then result id so files diff cleanly."""
    path = Path(path)
    lines = []
    for qid in sorted(qrels):
        _check_id(qid, "need id")
        for docid in sorted(qrels[qid]):
            _check_id(docid, "result id")
            grade = qrels[qid][docid]
            if isinstance(grade, bool) or not isinstance(grade, int):
                raise ValueError(f"grade for ({qid}, {docid}) must be an int, got {grade!r}")
            lines.append(f"{qid} 0 {docid} {grade}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def read_run(path: PathLike) -> Run:
    """Read a TREC run file into ``{need_id: {result_id: score}}``.

    As in trec_eval, the score (not the rank column) defines the order; the rank column is still checked to be
    an integer so that a shifted or truncated line is caught.
    """
    run: Run = {}
    for lineno, line, fields in _iter_fields(path, "run"):
        if len(fields) != 6:
            raise JudgementFileError(
                f"{path}, line {lineno}: malformed run line, expected 6 fields "
                f"'need_id Q0 result_id rank score tag' but got {len(fields)}: {line!r}"
            )
        qid, _q0, docid, rank_text, score_text, _tag = fields
        try:
            int(rank_text)
        except ValueError:
            raise JudgementFileError(
                f"{path}, line {lineno}: field 'rank' must be an integer but got {rank_text!r}: "
                f"{line!r}"
            ) from None
        try:
            score = float(score_text)
        except ValueError:
            raise JudgementFileError(
                f"{path}, line {lineno}: field 'score' must be a number but got {score_text!r}: "
                f"{line!r}"
            ) from None
        if not math.isfinite(score):
            raise JudgementFileError(
                f"{path}, line {lineno}: field 'score' must be finite, got {score_text!r}: {line!r}")
        results = run.setdefault(qid, {})
        if docid in results:
            raise JudgementFileError(f"{path}, line {lineno}: duplicate result {docid!r} for need {qid!r}")
        results[docid] = score
    return run


def write_run(
    run: Mapping[str, Mapping[str, float]],
    path: PathLike,
    tag: str = "techmatch",
    depth: int | None = None,
) -> Path:
    """Write a run in TREC format with ranks by descending score (ties: ascending doc id).

    Scores are written with ``repr`` (shortest exact round trip) so reading the file back reproduces the same
    order; rounding them could create new ties and silently reorder results. ``depth`` keeps only the top
    results per need.
    """
    _check_id(tag, "run tag")
    path = Path(path)
    lines = []
    for qid in sorted(run):
        _check_id(qid, "need id")
        ranked = rank_documents(run[qid])
        if depth is not None:
            ranked = ranked[:depth]
        for rank, (docid, score) in enumerate(ranked, start=1):
            _check_id(docid, "result id")
            score = float(score)
            if not math.isfinite(score):
                raise ValueError(f"score for ({qid}, {docid}) must be finite, got {score!r}")
            lines.append(f"{qid} Q0 {docid} {rank} {score!r} {tag}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path
