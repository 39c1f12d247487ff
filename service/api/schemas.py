"""Request shapes; validation here gives each bad field a message, never a 500 (responses: ``responses.py``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recommender.filters import ResultFilters
from recommender.records import Kind, Record, parse_record
from service.core.config import (
    MAX_ID_CHARS,
    MAX_K,
    MAX_KEYWORD_CHARS,
    MAX_NOTE_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
)
from service.core.errors import ServiceError

Outcome = Literal["accepted", "rejected", "contacted", "signed"]


# In the schema: a text field must hold a non-blank character. Only documented (the validators below refuse a
# blank value with a clearer message than a pattern's), so a generated client or a fuzzer knows it too.
# (Python's str.strip also drops \x1c-\x1f and \x85, which JavaScript's \S keeps: the class leaves them out;
# NUL characters are dropped from every text of a record, ``recommender.records``, so NUL is left out too.)
NOT_BLANK: dict[str, Any] = {"pattern": r"[^\s\x1c-\x1f\x85\x00]"}


def _not_blank(value: str | None, name: str) -> str | None:
    if value is not None and not value.strip():
        raise ValueError(f"{name} is empty or only whitespace")
    return value.strip() if value is not None else None


class RecordIn(BaseModel):
    """Fields every record has; unknown extra fields are kept (the contract allows them)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS, description="unique id; required in bulk",
                           json_schema_extra=NOT_BLANK)
    title: str = Field(..., max_length=MAX_TITLE_CHARS, json_schema_extra=NOT_BLANK)
    keywords: list[Annotated[str, Field(max_length=MAX_KEYWORD_CHARS)]] = Field(default_factory=list, max_length=100)

    @field_validator("id", "title")
    @classmethod
    def _text(cls, value: str | None, info: Any) -> str | None:
        return _not_blank(value, info.field_name)

    def to_record(self, kind: Kind, record_id: str | None = None) -> Record:
        """The validated Record (same rules as file loading); text over the limit is refused."""
        raw = self.model_dump()
        raw["id"] = record_id or self.id
        if not raw["id"]:
            raise ServiceError("field 'id' is required here", 422)
        record, problems = parse_record(raw, kind, "request", "body")
        if record is None:
            raise ServiceError("; ".join(f"field '{p.field}': {p.message}" if p.field else p.message
                                         for p in problems), 422)
        # Each field has its limit in the schema (title, description or abstract, keywords), so whatever the
        # schema accepts is stored: no combined limit a client could not know of.
        return record


class NeedIn(RecordIn):
    """An enterprise's technical need."""

    description: str = Field("", max_length=MAX_TEXT_CHARS)
    enterprise: str | None = Field(None, max_length=MAX_ID_CHARS, description="enterprise id")


class ResultIn(RecordIn):
    """A research result (patent, paper, prototype)."""

    abstract: str = Field("", max_length=MAX_TEXT_CHARS)
    field: str | None = None
    institution: str | None = None
    trl: int | None = Field(None, ge=1, le=9, description="technology readiness level 1-9")
    ip_status: str | None = None


class NeedCreate(NeedIn):
    """A new need: its id is required (``PUT /needs/{id}`` takes it from the path instead)."""

    id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS, description="unique id",  # type: ignore[assignment]
                    json_schema_extra=NOT_BLANK)


class ResultCreate(ResultIn):
    """A new result: its id is required (``PUT /results/{id}`` takes it from the path instead)."""

    id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS, description="unique id",  # type: ignore[assignment]
                    json_schema_extra=NOT_BLANK)


class MatchFilters(ResultFilters):
    """Result filters in a JSON body: an unknown name is refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class MatchTextIn(BaseModel):
    """A need in free text, matched without being stored."""

    text: str = Field(..., max_length=MAX_TEXT_CHARS, description=f"the need, at most {MAX_TEXT_CHARS} characters",
                      json_schema_extra=NOT_BLANK)
    title: str | None = Field(None, max_length=MAX_TITLE_CHARS, json_schema_extra=NOT_BLANK,
                              description="short statement of the problem; default: the text's first sentence")
    k: int = Field(10, ge=1, le=MAX_K)
    filters: MatchFilters = Field(default_factory=MatchFilters)
    explain: bool = Field(True, description="include shared key terms (the reason for each match)")
    collapse_duplicates: bool | None = Field(
        None, description="one match per duplicate group, the others' ids in 'duplicates' (default: the "
        "server's TECHMATCH_COLLAPSE_DUPLICATES, on)")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _not_blank(value, "text") or ""

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return _not_blank(value, "title")


class JudgementIn(BaseModel):
    """A judgement of one shown result of a need's list ('none' clears it); ``k``: the re-ranked list's length."""

    result_id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS)
    judgement: Literal["relevant", "irrelevant", "none"]
    k: int = Field(10, ge=1, le=MAX_K)


class FeedbackIn(BaseModel):
    need_id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS)
    result_id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS)
    outcome: Outcome
    note: str = Field("", max_length=MAX_NOTE_CHARS)
