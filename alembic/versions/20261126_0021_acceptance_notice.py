"""Acceptance notice for real-name reporters: when it was given, and reminders per stage.

Revision ID: 0021
Revises: 0014
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0021"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clue_states") as batch:
        batch.add_column(sa.Column("acceptance_notice_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("clue_reminders") as batch:
        # None: the clue's current deadline (clues.due_at); "acceptance_notice": the 15-working-day notice.
        batch.add_column(sa.Column("stage", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clue_reminders") as batch:
        batch.drop_column("stage")
    with op.batch_alter_table("clue_states") as batch:
        batch.drop_column("acceptance_notice_at")
