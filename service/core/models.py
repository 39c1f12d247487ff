"""Database tables (SQLAlchemy 2): the source of truth that the search index is rebuilt from.

The tables change only through migrations (``service/migrations``, Alembic), applied at startup.
Records keep their full contract fields in ``data`` (JSON) plus the columns lists filter on, and a
content hash that lets startup find every record the index is missing or holds in an older version.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
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
    __tablename__ = "needs"
    enterprise: Mapped[str | None] = mapped_column(String(200), index=True)


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
