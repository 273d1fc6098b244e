"""Outbox rows keep the rule's channel preference, the event and the guard decision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "channels",
                sqlmodel.sql.sqltypes.AutoString(length=100),
                nullable=False,
                server_default="",  # rows planned before this revision had no preference
            )
        )
        batch_op.add_column(
            sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
        batch_op.add_column(sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.alter_column("channel", existing_type=sa.VARCHAR(length=20), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.alter_column("channel", existing_type=sa.VARCHAR(length=20), nullable=False)
        batch_op.drop_column("reason")
        batch_op.drop_column("event_id")
        batch_op.drop_column("channels")
