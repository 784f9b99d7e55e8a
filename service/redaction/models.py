"""Redacted versions of a clue's texts and files, and requests to unmask a span automatic masking hid.

Every sensitive value is an envelope: a version's text is sealed with the case key like the content it
replaces (``redactions/<id>/content``), a version's file key is wrapped to the case key like an
attachment's (``attachment/<blob_id>``), the marks (offsets, rectangles) and the reason are case-key
envelopes (``redactions/<id>/marks``, ``redactions/<id>/reason``). Plain columns hold ids, codes, the
version number and the redacted file's kind, size and digest. The originals are not touched.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id

TARGETS = ("report", "message", "addition", "attachment")


class Redaction(Base):
    """One version of one target: ``version`` counts from 1 (0 is the stored original, never a row)."""

    __tablename__ = "redactions"
    __table_args__ = (
        Index("ix_redactions_target_version", "target", "target_id", "field", "version", unique=True),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(16))  # report | message | addition | attachment
    target_id: Mapped[str] = mapped_column(String(36))  # the clue, message, addition or attachment id
    field: Mapped[str] = mapped_column(String(24), default="")  # an addition's text field; else ""
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8))  # redact | unmask
    marks: Mapped[bytes] = mapped_column(LargeBinary)  # case key: spans or regions, JSON
    reason: Mapped[bytes] = mapped_column(LargeBinary)  # case key
    content: Mapped[bytes | None] = mapped_column(LargeBinary)  # case key: the text of this version
    blob_id: Mapped[str | None] = mapped_column(String(32))  # the file of this version
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)  # case key: its file key
    kind: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))  # audit actor string
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UnmaskRequest(Base):
    """A supervisor's request to show one automatically masked span; applied only where the identity key
    can be rebuilt (custodians' shares: ``tipline redaction unmask``), which writes an ``unmask`` version."""

    __tablename__ = "unmask_requests"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(16))  # report | message | addition
    target_id: Mapped[str] = mapped_column(String(36))
    field: Mapped[str] = mapped_column(String(24), default="")
    base_version: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)  # the marker's offsets in that version's text
    end: Mapped[int] = mapped_column(Integer)
    reason: Mapped[bytes] = mapped_column(
        LargeBinary
    )  # clue key (else case key): unmask_requests/<id>/reason
    # Identity key: what the custodians' step needs (that version's text, version 0, the versions' marks,
    # the accused name, the reason), sealed by the requester who holds the clue's key. NULL before 0034.
    context: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12))  # pending | applied
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redaction_id: Mapped[str | None] = mapped_column(String(36))  # the version it produced
