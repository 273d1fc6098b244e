"""Sharded evaluation: each shard's figures (customers, messages, tasks, firings per
rule) by parent run, in the database every worker shares.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evaluation_shard_figures",
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("figure", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "shard", "figure"),
    )


def downgrade() -> None:
    op.drop_table("evaluation_shard_figures")
