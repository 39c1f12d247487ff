"""The schema of the first service release (needs, results, partners, keys, feedback, change log).

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _record_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table("needs", *_record_columns(), sa.Column("enterprise", sa.String(200), nullable=True))
    op.create_index("ix_needs_enterprise", "needs", ["enterprise"])
    op.create_table(
        "results", *_record_columns(),
        sa.Column("field", sa.String(200), nullable=True), sa.Column("institution", sa.String(300), nullable=True),
        sa.Column("ip_status", sa.String(100), nullable=True), sa.Column("trl", sa.Integer(), nullable=True),
    )
    op.create_index("ix_results_field", "results", ["field"])
    op.create_index("ix_results_institution", "results", ["institution"])
    for name in ("enterprises", "funds"):
        op.create_table(name, sa.Column("id", sa.String(200), primary_key=True),
                        sa.Column("name", sa.Text(), nullable=False), sa.Column("data", JSON, nullable=False))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("enterprise", sa.String(200), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("need_id", sa.String(200), nullable=False),
        sa.Column("result_id", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_pair", "feedback", ["need_id", "result_id"])
    op.create_table(
        "index_changes",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    for name in ("index_changes", "feedback", "api_keys", "funds", "enterprises", "results", "needs"):
        op.drop_table(name)
