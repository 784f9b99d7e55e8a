"""Report forms filed or being filed, by HMAC of their idempotency key only, so a resend reaching any server
process files nothing (was per-process memory).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "submitted_forms",
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("view", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_submitted_forms_hold_until", "submitted_forms", ["hold_until"])
    op.create_index("ix_submitted_forms_expires_at", "submitted_forms", ["expires_at"])


def downgrade() -> None:
    op.drop_table("submitted_forms")
