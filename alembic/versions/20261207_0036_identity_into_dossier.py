"""Identity in a dossier only through a custody release (issue 19, "Dossier export for hand-off"): a release
request of kind ``dossier`` names the hand-off (``custody_requests.transfer_id``) and the identity fields it
decides to include (``custody_requests.fields``, comma-separated names such as ``name,phone``); the dossier
exported with it records the release (``dossiers.identity_release_id``).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("custody_requests") as batch:
        batch.add_column(sa.Column("transfer_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("fields", sa.String(200), nullable=True))
        batch.create_foreign_key(
            "fk_custody_requests_transfer_id_clue_transfers",
            "clue_transfers",
            ["transfer_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("identity_release_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_column("identity_release_id")
    with op.batch_alter_table("custody_requests") as batch:
        batch.drop_constraint("fk_custody_requests_transfer_id_clue_transfers", type_="foreignkey")
        batch.drop_column("fields")
        batch.drop_column("transfer_id")
