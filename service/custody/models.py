"""Identity custody records: release requests and the contact-key envelopes of real-name reporters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id


class CustodyRequest(Base):
    """A request to open a submitter's identity (two people), to send named identity fields with one
    hand-off's dossier (``dossier``: two people, ``transfer_id`` and ``fields`` say which), or to open the
    contact fields (one custodian).

    ``reason`` is one of the clue's items (``compartments.items``): sealed to the clue's own key (the case
    key for a clue registered before compartments until it is adopted), bound to
    ``custody_requests/<id>/reason``; everything else is ids,
    codes and times. Status moves pending → approved | refused → released | expired, never back."""

    __tablename__ = "custody_requests"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # identity | dossier | contact
    status: Mapped[str] = mapped_column(String(16), index=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A dossier release: the hand-off whose dossier carries the identity, and the identity fields decided
    # (comma-separated names, e.g. "name,phone"); NULL for the other kinds.
    transfer_id: Mapped[str | None] = mapped_column(ForeignKey("clue_transfers.id", ondelete="SET NULL"))
    fields: Mapped[str | None] = mapped_column(String(200))


class ClueContact(Base):
    """A real-name reporter's contact fields (phone, email, address) sealed to the contact key, apart from
    the identity envelope, so statutory feedback needs one custodian and reveals no name."""

    __tablename__ = "clue_contacts"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
