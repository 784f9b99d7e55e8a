"""The outbox and staff notification preferences.

Invariants:
- An acknowledgement's recipient address and receipt code exist only in ``sealed``, an envelope to the
  outbound key (only the worker loads its private key). Once the message is sent, or given up, ``sealed``
  is set to NULL: the address is destroyed.
- A staff notification carries no report content: only an event name, a count and a link (``path``).
- ``last_error`` is an exception type name, never a message (messages can hold addresses).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id

ACK, STAFF, DIGEST = "ack", "staff", "digest"
PENDING, HELD, SENT, FAILED, DIGESTED = "pending", "held", "sent", "failed", "digested"
IMMEDIATE, DAILY, OFF = "immediate", "daily", "off"
MODES = (IMMEDIATE, DAILY, OFF)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # pending, held (for a digest), sent, failed, digested
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32), default="")  # staff: clue_assigned, new_clue, …
    path: Mapped[str] = mapped_column(String(200), default="")  # staff: where to look, e.g. /staff/registry/clues/<id>
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # ack: outbound key {"to", "receipt"}
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationPreference(Base):
    """Where and how often one staff member hears that there is something to look at."""

    __tablename__ = "notification_preferences"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(254))  # a work address of a staff member, not a reporter
    mode: Mapped[str] = mapped_column(String(16), default=IMMEDIATE)  # immediate, daily, off
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def sealed_binding(outbox_id: str) -> str:
    return f"outbox/{outbox_id}/sealed"
