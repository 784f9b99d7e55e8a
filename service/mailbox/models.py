"""What the mailbox channel records about each received message, whatever became of it.

One row per distinct message (``dedupe_key`` is unique): a redelivery finds the row and changes nothing.

Invariants:
- ``dedupe_key`` is a keyed HMAC (``runtime.lookup_key("mail-dedupe")``) over the Message-ID digest and
  a content digest, so the column cannot be matched against a known message without the server secret.
- A report keeps no content here: the clue holds it. Filtered mail (auto-replies, bounces, spam) keeps its
  decoded subject and body, masked, sealed to the identity key until ``expires_at``, then the envelope is
  destroyed (the row stays, for counting and deduplication). A quarantined message keeps the raw bytes
  sealed whole to the identity key (raw headers identify the sender). No server process opens either: a
  supervisor fetches the envelope (``mailbox.service.read_quarantined``, audited) for a custodian to open
  on the custodial machine. (Filtered mail received before this was sealed to the case key; it is destroyed
  by the purge at the end of its retention like the rest.)
- ``reason`` is a fixed English phrase chosen by the parser, never text taken from the message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id

CLUE, FILTERED, QUARANTINED = "clue", "filtered", "quarantined"
OUTCOMES = (CLUE, FILTERED, QUARANTINED)


class ReceivedMail(Base):
    __tablename__ = "mail_received"
    __table_args__ = (Index("ix_mail_received_outcome_received", "outcome", "received_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # report, auto_reply, bounce, spam, unparseable
    reason: Mapped[str] = mapped_column(String(120), default="")
    via: Mapped[str] = mapped_column(String(8), default="smtp")  # smtp or imap
    size: Mapped[int] = mapped_column(Integer)
    attachments: Mapped[int] = mapped_column(Integer, default=0)
    clue_id: Mapped[str | None] = mapped_column(ForeignKey("clues.id", ondelete="SET NULL"), index=True)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # see the module docstring
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def sealed_binding(row_id: str) -> str:
    return f"mail_received/{row_id}/sealed"
