"""Each compartmented clue keeps the public half of its own key pair (``clue_sealed.public``), derived from
its content key, so processes that do not hold the content key (intake, mail ingest, the status page, the
hotline) seal follow-ups, file keys and additions that only the clue's readers open. Clues registered since
0031 get it when a holder first opens them (the migration holds no content key); until then their items
are sealed to the case key, as before.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 13:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clue_sealed") as batch:
        batch.add_column(sa.Column("public", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clue_sealed") as batch:
        batch.drop_column("public")
