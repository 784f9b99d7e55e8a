"""custody: identity release requests, contact-key envelopes; signed audit checkpoints

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "custody_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("clue_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requester_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clue_id"], ["clues.id"], name=op.f("fk_custody_requests_clue_id_clues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["staff.id"], name=op.f("fk_custody_requests_requester_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["staff.id"], name=op.f("fk_custody_requests_decided_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_requests")),
    )
    op.create_index(op.f("ix_custody_requests_clue_id"), "custody_requests", ["clue_id"], unique=False)
    op.create_index(op.f("ix_custody_requests_status"), "custody_requests", ["status"], unique=False)
    op.create_table(
        "clue_contacts",
        sa.Column("clue_id", sa.String(length=36), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clue_id"], ["clues.id"], name=op.f("fk_clue_contacts_clue_id_clues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("clue_id", name=op.f("pk_clue_contacts")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("heads", sa.Text(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("clue_contacts")
    op.drop_index(op.f("ix_custody_requests_status"), table_name="custody_requests")
    op.drop_index(op.f("ix_custody_requests_clue_id"), table_name="custody_requests")
    op.drop_table("custody_requests")
