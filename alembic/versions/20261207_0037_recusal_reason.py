"""A recusal's reason (issue 19, "Compartments": the staff site records recusals with a reason):
``clue_recusals.reason``, sealed like every other item of the clue (its own key, else the case key) under
``clue_recusals/<clue id>/<staff id>/reason``. Recusals recorded before have none.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clue_recusals") as batch:
        batch.add_column(sa.Column("reason", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clue_recusals") as batch:
        batch.drop_column("reason")
