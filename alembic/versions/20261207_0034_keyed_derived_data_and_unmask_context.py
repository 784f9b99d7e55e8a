"""Keyed derived data computed at intake, so staff-side work opens no report (compartments, issue 19):
``clues.accused_words`` (keyed digests of what the reporter wrote about the accused, which recusal asks
which units are named: ``registry.recusal.KeyedWords``) and ``near_duplicate_pending.signature`` (the keyed
MinHash of the masked text, which the near-duplicate task compares); and ``unmask_requests.context``: what
the custodians' unmask step needs (that version's text, version 0, the versions' marks, the accused name,
the reason), sealed to the identity key by the requester, who holds the clue's key, so the custodial command
line needs no personal key while the versions themselves are sealed to the clue's key.

Backfill: none is possible here (a migration holds no keys) and none is needed for reading. Clues
registered before this revision keep ``accused_words`` NULL and recusal opens their words with the case key,
as every item of such a clue opens; their queue rows keep ``signature`` NULL and the near-duplicate task signs
them from the case-key copy, in a process holding the case key (it refuses loudly elsewhere and leaves the
queue as it is). Clues already signed keep ``clue_states.near_signature``. An unmask request pending at the
upgrade has no context: applying it is refused with a clear message, and the supervisor asks again.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 14:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clues") as batch:
        batch.add_column(sa.Column("accused_words", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("near_duplicate_pending") as batch:
        batch.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("unmask_requests") as batch:
        batch.add_column(sa.Column("context", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unmask_requests") as batch:
        batch.drop_column("context")
    with op.batch_alter_table("near_duplicate_pending") as batch:
        batch.drop_column("signature")
    with op.batch_alter_table("clues") as batch:
        batch.drop_column("accused_words")
