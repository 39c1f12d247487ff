"""Filters on research results (field, institution, IP status, TRL range), defined once.

The same model is the API's query parameters and JSON body, narrows the database's lists (``service``
turns it into SQL), is pushed down into a vector database that stores each result's ``filter_values``
beside its vector (``recommender.ann.milvus_index`` turns it into a Milvus expression), and is the
in-memory predicate a search applies to its candidates (``accepts``), so a filter means the same thing
wherever it is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field, model_validator

from recommender.records import Record

FILTER_FIELDS = ("field", "institution", "ip_status")  # compared as text, exactly
NO_NUL = r"^[^\x00]*$"  # no stored text holds a NUL character (PostgreSQL's cannot)
FilterValues = dict[str, str | int | None]  # name -> value, None when the record has none
Metadata = Sequence[Mapping[str, Any]]  # one FilterValues per vector or document, given to index and upsert


def filter_values(record: Record) -> FilterValues:
    """What the filters read of a record: its text fields as text and its TRL if it is an integer (else None).

    Stored beside each vector by backends that filter inside the index, so they decide as ``accepts`` does.
    """
    extra = record.extra
    values: FilterValues = {name: None if extra.get(name) is None else str(extra.get(name)) for name in FILTER_FIELDS}
    trl = extra.get("trl")
    values["trl"] = trl if isinstance(trl, int) and not isinstance(trl, bool) else None
    return values


class ResultFilters(BaseModel):
    """Narrow results by their fields; every condition given must hold (unset: no condition)."""

    field: str | None = Field(None, max_length=200, pattern=NO_NUL, description="only results of this field (exact)")
    institution: str | None = Field(None, max_length=300, pattern=NO_NUL,
                                    description="only results of this institution (exact)")
    ip_status: str | None = Field(None, max_length=100, pattern=NO_NUL,
                                  description="only results with this IP status (exact)")
    trl_min: int | None = Field(None, ge=1, le=9, description="lowest technology readiness level (1-9)")
    trl_max: int | None = Field(None, ge=1, le=9, description="highest technology readiness level (1-9)")

    @model_validator(mode="after")
    def _range(self) -> ResultFilters:
        if self.trl_min is not None and self.trl_max is not None and self.trl_min > self.trl_max:
            raise ValueError(f"trl_min ({self.trl_min}) is greater than trl_max ({self.trl_max})")
        return self

    def active(self) -> bool:
        """Whether any condition is set."""
        return any(v is not None for v in self.model_dump().values())

    def conditions(self) -> dict[str, Any]:
        """The conditions that are set, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def accepts(self, record: Record) -> bool:
        """The in-memory predicate: does this result meet every condition?"""
        values = filter_values(record)
        for name in FILTER_FIELDS:
            wanted = getattr(self, name)
            if wanted is not None and values[name] != wanted:
                return False
        trl = values["trl"]
        if self.trl_min is not None and not (trl is not None and trl >= self.trl_min):
            return False
        return not (self.trl_max is not None and not (trl is not None and trl <= self.trl_max))
