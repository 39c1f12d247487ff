"""Database tables (SQLAlchemy 2): the source of truth that the search index is rebuilt from.

The tables change only through migrations (``service/migrations``, Alembic), applied at startup.
Records keep their full contract fields in ``data`` (JSON) plus the columns lists filter on, and a
content hash that lets startup find every record the index is missing or holds in an older version.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class RecordColumns:
    """Columns shared by needs and results."""

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class NeedRow(RecordColumns, Base):
    """A need; ``alias`` is the id its enterprise knows it by when another owner held that id (see ``ids``)."""

    __tablename__ = "needs"
    __table_args__ = (Index("uq_needs_enterprise_alias", "enterprise", "alias", unique=True),)
    enterprise: Mapped[str | None] = mapped_column(String(200), index=True)
    alias: Mapped[str | None] = mapped_column(String(200))


class ResultRow(RecordColumns, Base):
    __tablename__ = "results"
    field: Mapped[str | None] = mapped_column(String(200), index=True)
    institution: Mapped[str | None] = mapped_column(String(300), index=True)
    ip_status: Mapped[str | None] = mapped_column(String(100))
    trl: Mapped[int | None] = mapped_column(Integer)


class EnterpriseRow(Base):
    __tablename__ = "enterprises"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSONType)


class FundRow(Base):
    __tablename__ = "funds"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSONType)


class ApiKeyRow(Base):
    """An API key: only its sha256 is stored; ``id`` is the short public part printed in logs and feedback."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    enterprise: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # set: the key answers 401
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # past: the key answers 401
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # at most once a minute


class FeedbackRow(Base):
    """A broker's outcome for one (need, result) pair: the labels the learning module trains on."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_pair", "need_id", "result_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    need_id: Mapped[str] = mapped_column(String(200))
    result_id: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    key_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IndexChangeRow(Base):
    """One committed change to a need or result, in commit order.

    Every serving process replays this log before it searches (``IndexSync.catch_up``), so several
    worker processes, or a bulk load by the CLI while the service runs, never leave an index behind the
    database. A row names only what changed; the replay reads the record's current row (none: deleted)."""

    __tablename__ = "index_changes"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    record_id: Mapped[str] = mapped_column(String(200))


# -- the web workbench (service/web): accounts, sign-in sessions, enterprise interest marks, background jobs --


class UserRow(Base):
    """A person who signs in to the workbench: a broker, or an enterprise's engineer bound to one enterprise id.

    Only an argon2 hash of the password is stored; a disabled user cannot sign in and loses every session."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    enterprise: Mapped[str | None] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)  # brokers only: the admin pages
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSessionRow(Base):
    """A signed-in browser: the cookie holds a random token of which only the sha256 is kept here, beside
    the session's CSRF token (every form of the session must send it back)."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InterestRow(Base):
    """An enterprise marked a result as interesting for one of its needs: what its broker should follow up."""

    __tablename__ = "interests"
    __table_args__ = (UniqueConstraint("need_id", "result_id", name="uq_interest_pair"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    need_id: Mapped[str] = mapped_column(String(200), index=True)
    result_id: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JudgementRow(Base):
    """A broker's or the need's enterprise's judgement of one shown result (relevant / irrelevant): it re-ranks
    the rest of that need's list (issue 20, item 4); one per pair, the latest wins."""

    __tablename__ = "relevance_judgements"
    __table_args__ = (UniqueConstraint("need_id", "result_id", name="uq_judgement_pair"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    need_id: Mapped[str] = mapped_column(String(200), index=True)
    result_id: Mapped[str] = mapped_column(String(200))
    judgement: Mapped[str] = mapped_column(String(20))
    who: Mapped[str] = mapped_column(String(200))  # "user:<id>" (web) or "key:<key id>" (API)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobRow(Base):
    """Long work run in the background (the shortlist of a whole corpus): its progress, outcome and answer.

    Kept in the database so that any page (and any worker process) can show its progress; ``heartbeat_at``
    is refreshed while the job runs, so a job whose process died shows as interrupted, not running forever."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict] = mapped_column(JSONType)
    result: Mapped[list | None] = mapped_column(JSONType)
    summary: Mapped[dict | None] = mapped_column(JSONType)  # a few counts, read without the (large) result
    error: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# -- security and operations (issue 23): throttling, the security epoch, the audit trail --


class AuthFailureRow(Base):
    """One refused sign-in or API key, in a bucket (``account:<name>``, ``address:<ip>``, ``key:<ip>``).

    The throttle counts a bucket's rows inside its sliding window; in the database so every worker process
    (and every machine on one PostgreSQL) sees the same count."""

    __tablename__ = "auth_failures"
    __table_args__ = (Index("ix_auth_failures_bucket_at", "bucket", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SecurityEpochRow(Base):
    """A single counter bumped by every change that must end access at once (key revoked, user disabled,
    password changed); each worker reads it per request and drops what it cached when it moved."""

    __tablename__ = "security_epoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class AuditRow(Base):
    """Who did what, when, from where; ``account`` is the enterprise an entry belongs to (its users see it)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    account: Mapped[str | None] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(50), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(100), default="")


# -- review campaigns (issue 20): the broker's decisions that the review loop learns from --


class CampaignRow(Base):
    """A review over a set of results (all, a field, an institution, added since a date), fixed at creation."""

    __tablename__ = "review_campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(20))  # all, field, institution, since
    scope_value: Mapped[str] = mapped_column(Text, default="")
    pool: Mapped[list] = mapped_column(JSONType)  # the result ids under review, in the order they were stored
    pool_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, closed
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CampaignDecisionRow(Base):
    """One broker's decision on one result of a campaign (transferable, not_transferable, skip); one per result,
    the latest wins (a changed decision is a new row, so the id order is the reading order)."""

    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("campaign_id", "result_id", name="uq_review_decision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("review_campaigns.id", ondelete="CASCADE"), index=True)
    result_id: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    who: Mapped[str] = mapped_column(String(200))  # "user:<id>" (web) or "key:<key id>"-style key id (API)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CampaignHoldRow(Base):
    """A result being read: nobody else is shown it until ``until`` (a few minutes). The primary key makes taking
    a hold one atomic row write on SQLite and PostgreSQL alike."""

    __tablename__ = "review_holds"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("review_campaigns.id", ondelete="CASCADE"), primary_key=True)
    result_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
