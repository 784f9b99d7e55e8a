"""Near-duplicate LSH band index (backfilled from the signatures already stored) and the pending queue.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 08:20:20
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As service.classification.dedup.band_buckets at this revision (kept here so the migration never changes).
BANDS, ROWS = 21, 6


def _buckets(signature: bytes) -> set[tuple[int, int]]:
    out = set()
    for band in range(BANDS):
        chunk = signature[band * ROWS * 8 : (band + 1) * ROWS * 8]
        out.add((band, int.from_bytes(hashlib.blake2b(chunk, digest_size=8).digest(), "little") >> 1))
    return out


def upgrade() -> None:
    table = op.create_table(
        "near_duplicate_bands",
        sa.Column("band", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("clue_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["clue_id"], ["clues.id"], name=op.f("fk_near_duplicate_bands_clue_id_clues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("band", "bucket", "clue_id", name=op.f("pk_near_duplicate_bands")),
    )
    op.create_index("ix_near_duplicate_bands_clue", "near_duplicate_bands", ["clue_id"], unique=False)
    op.create_table(
        "near_duplicate_pending",
        sa.Column("clue_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["clue_id"], ["clues.id"], name=op.f("fk_near_duplicate_pending_clue_id_clues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("clue_id", name=op.f("pk_near_duplicate_pending")),
    )
    rows = op.get_bind().execute(
        sa.text("SELECT clue_id, near_signature FROM clue_states WHERE near_signature IS NOT NULL")
    )
    batch = []
    for clue_id, signature in rows:
        batch.extend({"band": b, "bucket": k, "clue_id": clue_id} for b, k in _buckets(bytes(signature)))
        if len(batch) >= 10_000:
            op.bulk_insert(table, batch)
            batch = []
    if batch:
        op.bulk_insert(table, batch)


def downgrade() -> None:
    op.drop_table("near_duplicate_pending")
    op.drop_index("ix_near_duplicate_bands_clue", table_name="near_duplicate_bands")
    op.drop_table("near_duplicate_bands")
