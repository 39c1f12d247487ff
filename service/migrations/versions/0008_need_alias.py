"""Ids that leak nothing: a need created by an enterprise under an id another owner holds is stored under a
server-assigned id, ``alias`` keeping the id that enterprise knows it by (unique per enterprise).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("needs") as batch:
        batch.add_column(sa.Column("alias", sa.String(200), nullable=True))
    op.create_index("uq_needs_enterprise_alias", "needs", ["enterprise", "alias"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_needs_enterprise_alias", table_name="needs")
    with op.batch_alter_table("needs") as batch:
        batch.drop_column("alias")
