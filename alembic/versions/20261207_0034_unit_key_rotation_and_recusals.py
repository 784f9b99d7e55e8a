"""Unit-key rotation after offboarding and personal recusal from a clue (issue 19).

``compartment_keys.rotation_due_at``: set on a unit key when a person who held a grant of it is disabled;
the key is replaced at the next unlocked request of a remaining member, by the command line, or by
custodians' recovery. ``compartment_keys.replaces``: on the replacement, the key it replaces (an interrupted
rotation resumes with it). ``clue_recusals``: a person recused from one clue, whose wraps of it are gone and
who reads it through no unit key either.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("compartment_keys") as batch:
        batch.add_column(sa.Column("rotation_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replaces", sa.String(64), nullable=True))
        batch.create_index("ix_compartment_keys_replaces", ["replaces"])
    op.create_table(
        "clue_recusals",
        sa.Column("clue_id", sa.String(36), sa.ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("staff_id", sa.String(36), sa.ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_clue_recusals_staff_id", "clue_recusals", ["staff_id"])


def downgrade() -> None:
    op.drop_index("ix_clue_recusals_staff_id", table_name="clue_recusals")
    op.drop_table("clue_recusals")
    with op.batch_alter_table("compartment_keys") as batch:
        batch.drop_index("ix_compartment_keys_replaces")
        batch.drop_column("replaces")
        batch.drop_column("rotation_due_at")
