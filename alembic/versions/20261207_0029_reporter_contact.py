"""Reporter communication the rules ask for: files staff send to a reporter (the file key also sealed to the
clue's reporter key), follow-up calls and visits (回访) and a real-name reporter's objections (异议); and each
dossier's ZIP kept (encrypted in the blob store), so the one produced with a transfer can be downloaded.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("reporter_key", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("blob_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
    op.create_table(
        "clue_follow_ups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("clue_id", sa.String(36), sa.ForeignKey("clues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("visitor_id", sa.String(36), sa.ForeignKey("staff.id"), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.Column("identity", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_clue_follow_ups_clue_id", "clue_follow_ups", ["clue_id"])
    op.create_table(
        "clue_objections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("clue_id", sa.String(36), sa.ForeignKey("clues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("statement", sa.LargeBinary(), nullable=False),
        sa.Column("identity", sa.LargeBinary(), nullable=True),
        sa.Column("reporter_copy", sa.LargeBinary(), nullable=True),
        sa.Column("answer", sa.LargeBinary(), nullable=True),
        sa.Column("answer_copy", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_clue_objections_clue_id", "clue_objections", ["clue_id"])
    op.create_index("ix_clue_objections_status", "clue_objections", ["status", "received_at"])


def downgrade() -> None:
    op.drop_table("clue_objections")
    op.drop_table("clue_follow_ups")
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_column("wrapped_key")
        batch.drop_column("blob_id")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("reporter_key")
