"""Units carry aliases (other names reporters use for them: "城关所", "城关派出所" for "县公安局城关派出所"),
matched like the name when recusal compares what a reporter wrote with the unit tree.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("aliases", sa.Text(), nullable=True))  # JSON list of names


def downgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.drop_column("aliases")
