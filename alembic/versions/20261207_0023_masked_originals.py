"""Reporter-written texts after the first report are masked for staff: the originals of a reporter's
follow-up message and of a caller's additions are kept under the identity key.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 07:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("identity", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("clue_additions") as batch:
        batch.add_column(sa.Column("identity", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clue_additions") as batch:
        batch.drop_column("identity")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("identity")
