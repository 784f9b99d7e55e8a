"""Near-duplicate signatures and LSH bands are keyed with the server's lookup secret: the unkeyed ones
(made with a public seed, so a database copy could test a report for a phrase) are cleared and every clue
is queued again; the periodic near-duplicate task recomputes them with the key. Links stay.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 08:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM near_duplicate_bands")
    op.execute("UPDATE clue_states SET near_signature = NULL WHERE near_signature IS NOT NULL")
    op.execute(
        "INSERT INTO near_duplicate_pending (clue_id) SELECT id FROM clues "
        "WHERE id NOT IN (SELECT clue_id FROM near_duplicate_pending)"
    )


def downgrade() -> None:
    # Keyed signatures would not compare with unkeyed ones: clear them and let the task sign again.
    op.execute("DELETE FROM near_duplicate_bands")
    op.execute("UPDATE clue_states SET near_signature = NULL WHERE near_signature IS NOT NULL")
    op.execute(
        "INSERT INTO near_duplicate_pending (clue_id) SELECT id FROM clues "
        "WHERE id NOT IN (SELECT clue_id FROM near_duplicate_pending)"
    )
