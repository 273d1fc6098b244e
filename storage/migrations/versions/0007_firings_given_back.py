"""Re-entry counts what went out: a firing remembers when every message it planned was
suppressed by a hold (the frequency cap, or the complaint hold's limit). Outbox rows
now fill in the `firing_id` that planned them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rule_firings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("suppressed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("rule_firings", schema=None) as batch_op:
        batch_op.drop_column("suppressed")
