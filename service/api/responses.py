"""Response shapes: every route answers one of these, so ``/openapi.json`` tells a client (or the web pages)
exactly what comes back. Records keep the extra fields they were stored with (the contract allows them),
which the schemas declare as additional properties.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from recommender.hybrid import Match
from recommender.records import Kind, Record
from recommender.triage.shortlist import ShortlistEntry
from recommender.triage.targets import PushTarget

T = TypeVar("T")


def _as_text(value: Any) -> str | None:
    """Stored fields compared as text (filters do the same): a number from a spreadsheet becomes its text."""
    if value is None or isinstance(value, str):
        return value
    return str(value)



def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


# Times are stored in UTC; SQLite hands them back without their zone, and an RFC 3339 date-time (the schema's
# "format": "date-time") must carry one: "2026-12-03T14:59:24+00:00", never a bare local-looking time.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

class ErrorOut(BaseModel):
    """Every 4xx and 5xx: ``detail`` says what is wrong and where; validation errors list each problem."""

    detail: str
    errors: list[dict[str, Any]] | None = None


class RecordOut(BaseModel):
    """Fields every stored record has; its other fields follow as they were given."""

    model_config = ConfigDict(extra="allow")

    id: str
    title: str
    keywords: list[str] = Field(default_factory=list)
    created_at: UtcDatetime | None = Field(None, description="when it was first stored (absent inside matches)")
    updated_at: UtcDatetime | None = Field(None, description="when it was last written (absent inside matches)")


class NeedOut(RecordOut):
    """An enterprise's technical need."""

    description: str = ""
    enterprise: str | None = None

    text_fields = field_validator("enterprise", mode="before")(lambda v: _as_text(v))


class ResultOut(RecordOut):
    """A research result (patent, paper, prototype)."""

    abstract: str = ""
    field: str | None = None
    institution: str | None = None
    ip_status: str | None = None
    trl: int | None = Field(None, ge=1, le=9, description="technology readiness level 1-9")

    text_fields = field_validator("field", "institution", "ip_status", mode="before")(lambda v: _as_text(v))


def record_out(record: Record, kind: Kind) -> NeedOut | ResultOut:
    model = NeedOut if kind == "need" else ResultOut
    return model.model_validate(record.to_dict(kind))


class SignalScoreOut(BaseModel):
    """One signal's own view of a match."""

    score: float
    rank: int | None = Field(description="rank among the signal's candidates; null: outside them")


class MatchOut(BaseModel):
    """A ranked match with its reasons: fused score, each signal's score and rank, shared key terms."""

    rank: int
    id: str
    title: str
    score: float = Field(description="fused score (weighted reciprocal rank fusion)")
    signals: dict[str, SignalScoreOut]
    shared_terms: list[str] = Field(description="the query's key terms the match shares (empty with explain=false)")
    grade: int | None = Field(None, description="the installed grader's grade (absent without a grader)")
    grade_probability: float | None = Field(None, description="the grader's probability of that grade")
    duplicates: list[str] = Field(default_factory=list, description="ids of the other records of this match's "
                                  "duplicate group, folded under it (empty when lists are not collapsed)")

    @staticmethod
    def fields_of(match: Match) -> dict[str, Any]:
        return {
            "rank": match.rank, "id": match.id, "title": match.title, "score": round(match.score, 6),
            "signals": {k: SignalScoreOut(score=round(v.score, 6), rank=v.rank) for k, v in match.signals.items()},
            "shared_terms": match.shared_terms, "grade": match.grade,
            "grade_probability": None if match.grade_probability is None else round(match.grade_probability, 4),
            "duplicates": list(match.duplicates),
        }


class ResultMatchOut(MatchOut):
    """A result matched to a need."""

    record: ResultOut

    @classmethod
    def of(cls, match: Match) -> ResultMatchOut:
        return cls(**cls.fields_of(match), record=record_out(match.record, "result"))


class NeedMatchOut(MatchOut):
    """A need (and so its enterprise) matched to a result."""

    record: NeedOut

    @classmethod
    def of(cls, match: Match) -> NeedMatchOut:
        return cls(**cls.fields_of(match), record=record_out(match.record, "need"))


class FreeTextQueryOut(BaseModel):
    """The free-text need as it was matched: its title (given, or the text's first sentence) and text."""

    title: str
    text: str
    k: int


class ResultMatchesOut(BaseModel):
    """Results for a need."""

    query: NeedOut | FreeTextQueryOut
    matches: list[ResultMatchOut]
    judgements: int = Field(0, description="judgements of this need's results the list was re-ranked by")


class NeedMatchesOut(BaseModel):
    """Needs for a result."""

    query: ResultOut
    matches: list[NeedMatchOut]


class PushTargetOut(BaseModel):
    """Who a result should be pushed to, and why."""

    kind: Literal["enterprise", "fund"]
    id: str
    name: str
    score: float
    reason: str
    need_id: str | None = Field(None, description="the need that makes an enterprise a recipient")

    @classmethod
    def of(cls, target: PushTarget) -> PushTargetOut:
        return cls.model_validate(target.to_dict())


class PushOut(BaseModel):
    result: ResultOut
    targets: list[PushTargetOut]


class ShortlistEntryOut(BaseModel):
    """One shortlisted result: why it is there (market pull, readiness, reasons) and whom to push it to."""

    rank: int
    result_id: str
    title: str
    score: float
    market_pull: float
    readiness: float
    top_need_ids: list[str]
    trl: int | None = None
    ip_status: str | None = None
    field: str | None = None
    institution: str | None = None
    enterprises: str = Field(description="the push list's enterprises as 'name(id)', ';'-separated")
    funds: str = Field(description="the push list's funds as 'name(id)', ';'-separated")
    reasons: list[str]
    push: list[PushTargetOut]

    text_fields = field_validator("field", "institution", "ip_status", mode="before")(lambda v: _as_text(v))

    @classmethod
    def of(cls, entry: ShortlistEntry) -> ShortlistEntryOut:
        return cls.model_validate(entry.to_dict())


class EnterpriseOut(BaseModel):
    """A partner enterprise (brokers see its contacts; push lists never carry them)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None = None


class FundOut(BaseModel):
    """A seed or angel fund, with the sectors and stages it invests in."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None = None


class FeedbackOut(BaseModel):
    id: int
    need_id: str
    result_id: str
    outcome: Literal["accepted", "rejected", "contacted", "signed"]
    note: str
    key_id: str
    created_at: UtcDatetime


class AuditOut(BaseModel):
    """One audit entry: who (``user:<name>``, ``key:<key id>``, ``cli``), when, what, from where."""

    id: int
    at: UtcDatetime
    actor: str
    account: str | None = Field(description="the enterprise the entry belongs to (none: the platform's)")
    action: str
    detail: str
    address: str


class WriteOut(BaseModel):
    written: int
    ids: list[str]
    duplicates_of_existing: dict[str, list[str]] = Field(
        default_factory=dict, description="written id -> ids of results stored before that it duplicates "
        "(same or nearly the same normalised title); they are folded into one match in match lists")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items`` from ``offset``, ``total`` in all."""

    items: list[T]
    total: int
    offset: int
    limit: int


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool
    index_in_sync: bool
    results: int
    needs: int
    worker: int = Field(description="the process that answered (with serve --workers N each has its own index)")


# The error answers every route may give (documented once for all of them in the OpenAPI schema).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": what} for status, what in (
        (400, "a request that cannot be done as asked"), (401, "no API key, or an unknown one"),
        (403, "the key's role may not do this"), (404, "unknown id (or another enterprise's need)"),
        (409, "conflict: the id exists, or nothing is stored yet to do this with"),
        (413, "body or upload over the limit"), (415, "unsupported upload type"),
        (422, "invalid request: each problem with its place"),
        (429, "too many refused keys from this address: wait Retry-After seconds"),
        (500, "internal error, with an incident id"),
        (503, "the vector database (Milvus) cannot be reached or refused the request"),
    )
}
