"""Compartments: key pairs of units, people and the escrow; unit keys granted to members; each clue's content
key wrapped to its readers and the clue's fields sealed under it; API tokens and web sessions carry their
own wrap of the holder's personal key.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "compartment_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("owner_kind", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.Column("suite", sa.String(length=64), nullable=False),
        sa.Column("public", sa.Text(), nullable=False),
        sa.Column("password_wrap", sa.LargeBinary(), nullable=True),
        sa.Column("password_salt", sa.LargeBinary(length=16), nullable=True),
        sa.Column("escrow_wrap", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index("ix_compartment_keys_owner", "compartment_keys", ["owner_kind", "owner_id"])
    op.create_table(
        "unit_key_grants",
        sa.Column("unit_key_id", sa.String(length=64), nullable=False),
        sa.Column("staff_key_id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=36), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_key_id"], ["compartment_keys.key_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_key_id"], ["compartment_keys.key_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("unit_key_id", "staff_key_id"),
    )
    op.create_index("ix_unit_key_grants_staff_key_id", "unit_key_grants", ["staff_key_id"])
    op.create_index("ix_unit_key_grants_staff_id", "unit_key_grants", ["staff_id"])
    op.create_table(
        "clue_sealed",
        sa.Column("clue_id", sa.String(length=36), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("accused", sa.LargeBinary(), nullable=False),
        sa.Column("classification", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["clue_id"], ["clues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("clue_id"),
    )
    op.create_table(
        "clue_key_wraps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("clue_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clue_id"], ["clues.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["key_id"], ["compartment_keys.key_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clue_id", "key_id"),
    )
    op.create_index("ix_clue_key_wraps_clue_id", "clue_key_wraps", ["clue_id"])
    op.create_index("ix_clue_key_wraps_key_id", "clue_key_wraps", ["key_id"])
    for table in ("api_tokens", "staff_sessions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("key_wrap", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    for table in ("api_tokens", "staff_sessions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("key_wrap")
    op.drop_table("clue_key_wraps")
    op.drop_table("clue_sealed")
    op.drop_table("unit_key_grants")
    op.drop_table("compartment_keys")
