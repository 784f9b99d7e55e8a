"""Messages on a clue, and the reporter's message key.

A message is sealed twice when it goes to the reporter: for staff (``body``: to the clue's own key, so only
those who hold a wrap of its content key read it; the case key for a clue sealed before compartments) and
for the reporter (``reporter_copy``) to the clue's reporter key, whose private half exists only wrapped
under a key derived from the receipt code. So the internet-facing intake process, which holds no case
private key, can show investigators' messages to whoever holds the code, and to nobody else.

The author's staff id is kept for the audit and for staff; it is never shown to the reporter.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id

TO_REPORTER = "to_reporter"
FROM_REPORTER = "from_reporter"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_clue_created", "clue_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))  # staff only; None = reporter
    body: Mapped[bytes] = mapped_column(LargeBinary)  # clue key (older: case key), messages/<id>/body
    reporter_copy: Mapped[bytes | None] = mapped_column(LargeBinary)  # reporter key, messages/<id>/reporter
    # A reporter's words as written, when masking changed them (identity key, messages/<id>/identity): the
    # body staff read is masked.
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReporterKey(Base):
    """The clue's reporter key pair (X25519): public half in the clear, private half AES-GCM-wrapped under
    HKDF(receipt code, salt). Re-wrapped when a code is replaced."""

    __tablename__ = "reporter_keys"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    wrapped_private: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
