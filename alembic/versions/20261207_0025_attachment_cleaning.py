"""Attachment cleaning (issue 16): ``attachments.sealed_reason``; existing ``removed_metadata`` scrubbed.

Rows written before this revision list removed fields by name, and some of those names came from the file
(custom property names such as an Office sensitivity label's GUID, PDF /Info keys, chunk and tag ids).
Each row's list is replaced by one count, ``legacy:fields=N``: no string of the file stays.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_attachments = sa.table(
    "attachments",
    sa.column("id", sa.String(36)),
    sa.column("removed_metadata", sa.String(2000)),
)


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("sealed_reason", sa.String(length=40), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_attachments.c.id, _attachments.c.removed_metadata).where(
            _attachments.c.removed_metadata != ""
        )
    ).all()
    for row_id, removed in rows:
        count = len([item for item in removed.split(",") if item])
        connection.execute(
            _attachments.update()
            .where(_attachments.c.id == row_id)
            .values(removed_metadata=f"legacy:fields={count}" if count else "")
        )


def downgrade() -> None:
    # The scrubbed names are gone for good (that is the point); only the column goes.
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("sealed_reason")
