"""Relevance feedback on a need's list: judgements of shown results (issue 20, item 4).

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relevance_judgements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("need_id", sa.String(200), nullable=False),
        sa.Column("result_id", sa.String(200), nullable=False),
        sa.Column("judgement", sa.String(20), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("need_id", "result_id", name="uq_judgement_pair"),
    )
    op.create_index("ix_relevance_judgements_need_id", "relevance_judgements", ["need_id"])


def downgrade() -> None:
    op.drop_index("ix_relevance_judgements_need_id", "relevance_judgements")
    op.drop_table("relevance_judgements")
