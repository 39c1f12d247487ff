"""Review campaigns: campaigns, decisions and holds (issue 20, items 1 and 2).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_campaigns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("scope_value", sa.Text(), nullable=False),
        sa.Column("pool", JSONType, nullable=False),
        sa.Column("pool_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("review_campaigns.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("result_id", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("campaign_id", "result_id", name="uq_review_decision"),
    )
    op.create_index("ix_review_decisions_campaign_id", "review_decisions", ["campaign_id"])
    op.create_table(
        "review_holds",
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("review_campaigns.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("result_id", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("review_holds")
    op.drop_index("ix_review_decisions_campaign_id", "review_decisions")
    op.drop_table("review_decisions")
    op.drop_table("review_campaigns")
