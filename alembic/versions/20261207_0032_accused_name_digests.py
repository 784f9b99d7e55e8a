"""Clues keep keyed digests of the accused names (``clues.accused_names``), so that masking a reporter's
later texts (follow-up messages, additions) keeps the accused readable in a process that cannot open the
case key. Clues registered before this revision have none (NULL): their follow-ups mask reporter names as
before, without the accused exception.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clues") as batch:
        batch.add_column(sa.Column("accused_names", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clues") as batch:
        batch.drop_column("accused_names")
