"""Redacted versions of a clue's texts and files (who, why, sealed marks and content) and requests to unmask
a span automatic masking hid.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "redactions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("clue_id", sa.String(36), sa.ForeignKey("clues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
        sa.Column("field", sa.String(24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("marks", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("blob_id", sa.String(32), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kind", sa.String(100), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_redactions_clue_id", "redactions", ["clue_id"])
    op.create_index(
        "ix_redactions_target_version", "redactions", ["target", "target_id", "field", "version"], unique=True
    )
    op.create_table(
        "unmask_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("clue_id", sa.String(36), sa.ForeignKey("clues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
        sa.Column("field", sa.String(24), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redaction_id", sa.String(36), nullable=True),
    )
    op.create_index("ix_unmask_requests_clue_id", "unmask_requests", ["clue_id"])


def downgrade() -> None:
    op.drop_table("unmask_requests")
    op.drop_table("redactions")
