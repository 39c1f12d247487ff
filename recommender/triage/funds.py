"""Seed/angel funds: loading them, and matching a result to the funds whose sectors and stages fit it.

A fund is pushed a result only when the result is in one of its sectors (its ``field``, or the sector's
name appearing in its text) and its TRL fits one of the fund's stages (weights.STAGE_TRL); the reason
says which sector and which stage, so a broker can defend the push on the phone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.records import Record, RecordError, RecordFileError, iter_raw
from recommender.triage import weights as W
from recommender.triage.readiness import trl_of
from recommender.triage.targets import PushTarget

STAGE_ALIASES = {
    "seed": "seed", "种子": "seed", "种子轮": "seed", "angel": "angel", "天使": "angel", "天使轮": "angel",
    "a": "A", "a轮": "A", "pre-a": "A", "b": "B", "b轮": "B",
}


@dataclass
class Fund:
    """A fund as the contract's funds.jsonl describes it (ticket sizes in 万元)."""

    id: str
    name: str
    sectors: list[str]
    stages: list[str]
    ticket_min: float | None = None
    ticket_max: float | None = None
    thesis: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _as_list(value: Any) -> list[str] | None:
    """A list of strings, or a cell joined by ; 、 , (CSV/Excel); None when it is neither."""
    if _missing(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _as_list(json.loads(text))
            except json.JSONDecodeError:
                return None
        for sep in ("；", "、", ",", "，", "|"):
            text = text.replace(sep, ";")
        return [p.strip() for p in text.split(";") if p.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def _parse_fund(raw: Any, path: str, location: str) -> tuple[Fund | None, list[RecordError]]:
    errors: list[RecordError] = []

    def err(name: str | None, message: str) -> None:
        errors.append(RecordError(path, location, name, message))

    if not isinstance(raw, dict):
        err(None, f"expected a JSON object, got {type(raw).__name__}")
        return None, errors
    fid = raw.get("id")
    if isinstance(fid, float) and fid.is_integer():
        fid = int(fid)
    if _missing(fid) or isinstance(fid, bool) or not isinstance(fid, (str, int)) or not str(fid).strip():
        err("id", "is missing or not a string")
    name = raw.get("name")
    if _missing(name):
        name = None if _missing(fid) else str(fid)
    sectors = _as_list(raw.get("sectors"))
    if sectors is None:
        err("sectors", "must be a list of strings (or one cell joined by ';')")
    elif not sectors:
        err("sectors", "is empty: a fund needs at least one sector to be matched")
    stages_raw = _as_list(raw.get("stages"))
    stages: list[str] = []
    if stages_raw is None:
        err("stages", "must be a list of strings such as [\"seed\", \"angel\"]")
    else:
        for s in stages_raw:
            stage = STAGE_ALIASES.get(s.lower())
            if stage is None:
                err("stages", f"unknown stage '{s}' (use {', '.join(W.STAGE_TRL)})")
            elif stage not in stages:
                stages.append(stage)
    tickets: dict[str, float | None] = {}
    for key in ("ticket_min", "ticket_max"):
        value = raw.get(key)
        if _missing(value):
            tickets[key] = None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            tickets[key] = float(value)
        else:
            err(key, f"must be a number (万元), got {value!r}")
    thesis = raw.get("thesis")
    if errors:
        return None, errors
    extra = {k: v for k, v in raw.items()
             if k not in ("id", "name", "sectors", "stages", "ticket_min", "ticket_max", "thesis")}
    return Fund(str(fid).strip(), str(name).strip(), sectors or [], stages, tickets["ticket_min"],
                tickets["ticket_max"], "" if _missing(thesis) else str(thesis), extra), []


def parse_funds(rows: Iterable[tuple[str, Any, RecordError | None]], path: str) -> list[Fund]:
    """Validate fund rows; refuse the file on any problem, listing them all."""
    funds: list[Fund] = []
    errors: list[RecordError] = []
    seen: set[str] = set()
    for location, raw, read_error in rows:
        if read_error is not None:
            errors.append(read_error)
            continue
        fund, problems = _parse_fund(raw, path, location)
        if fund is None:
            errors.extend(problems)
        elif fund.id in seen:
            errors.append(RecordError(path, location, "id", f"duplicate fund id '{fund.id}'"))
        else:
            seen.add(fund.id)
            funds.append(fund)
    if errors:
        raise RecordFileError(path, errors)
    if not funds:
        raise RecordFileError(path, [RecordError(path, "file", None, "is empty: no funds found")])
    return funds


def load_funds(path: str | Path) -> list[Fund]:
    """Funds from .jsonl, .csv or .xlsx; a missing, empty or malformed file raises RecordFileError."""
    path = Path(path)
    if not path.is_file():
        raise RecordFileError(str(path), [RecordError(str(path), "file", None, "does not exist or is not a file")])
    return parse_funds(iter_raw(path), str(path))


# -- matching -------------------------------------------------------------------------------------
def sector_fit(fund: Fund, record: Record) -> tuple[float, str | None]:
    """1 when the result's field is one of the fund's sectors, 0.7 when a sector is named in its text."""
    field_name = record.extra.get("field")
    if isinstance(field_name, str) and field_name in fund.sectors:
        return 1.0, field_name
    text = record.text
    for sector in fund.sectors:
        if len(sector) >= 2 and sector in text:
            return 0.7, sector
    return 0.0, None


def stage_fit(fund: Fund, trl: int | None) -> tuple[float, str | None]:
    """1 when the TRL lies in a stage's range (weights.STAGE_TRL), 0.5 when one level off; neutral if unknown."""
    if trl is None:
        return W.NEUTRAL_READINESS, (fund.stages[0] if fund.stages else None)
    best, best_stage = 0.0, None
    for stage in fund.stages:
        low, high = W.STAGE_TRL[stage]
        fit = 1.0 if low <= trl <= high else (0.5 if low - 1 <= trl <= high + 1 else 0.0)
        if fit > best:
            best, best_stage = fit, stage
    return best, best_stage


def match_funds(record: Record, funds: Sequence[Fund], k: int = W.FUNDS_PER_RESULT) -> list[PushTarget]:
    """The k funds whose sector and stage fit this result best, each with its reason."""
    trl = trl_of(record)
    scored: list[PushTarget] = []
    for fund in funds:
        sector_score, sector = sector_fit(fund, record)
        if sector_score == 0:
            continue
        stage_score, stage = stage_fit(fund, trl)
        if stage_score == 0:
            continue
        score = W.SECTOR_WEIGHT * sector_score + W.STAGE_WEIGHT * stage_score
        how = "field" if sector_score == 1.0 else "text mentions"
        stage_text = f"stage {stage} fits TRL {trl}" if trl is not None else f"stage {stage} (TRL unknown)"
        if trl is not None and stage_score < 1:
            stage_text = f"stage {stage} is one level from TRL {trl}"
        ticket = ""
        if fund.ticket_min is not None or fund.ticket_max is not None:
            low = "?" if fund.ticket_min is None else f"{fund.ticket_min:g}"
            high = "?" if fund.ticket_max is None else f"{fund.ticket_max:g}"
            ticket = f"; ticket {low}-{high}万元"
        reason = f"sector {sector} ({how}); {stage_text}{ticket}"
        scored.append(PushTarget("fund", fund.id, fund.name, score, reason))
    scored.sort(key=lambda t: (-t.score, t.id))
    return scored[:k]
