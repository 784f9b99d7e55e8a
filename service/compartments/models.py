"""Tables of the compartment key hierarchy: the key pairs of units, people and the escrow, the unit keys
granted to their members, and each clue's content key wrapped to whoever may read it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime


class CompartmentKey(Base):
    """A public key of a unit (``owner_kind`` unit), a person (staff) or the escrow. A person's private half
    is stored only sealed under their password (Argon2id; ``password_salt``); a unit's private half only
    as grants to its members and a wrap to the escrow key; the escrow's private half not at all."""

    __tablename__ = "compartment_keys"
    __table_args__ = (Index("ix_compartment_keys_owner", "owner_kind", "owner_id"),)

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(8))  # unit | staff | escrow
    owner_id: Mapped[str | None] = mapped_column(String(36))
    suite: Mapped[str] = mapped_column(String(64))
    public: Mapped[str] = mapped_column(Text)  # the public key document (JSON)
    password_wrap: Mapped[bytes | None] = mapped_column(LargeBinary)  # staff: private half under the password
    password_salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    escrow_wrap: Mapped[bytes | None] = mapped_column(LargeBinary)  # unit: private half sealed to the escrow
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # no new wraps; old ones removed


class UnitKeyGrant(Base):
    """A unit's private key sealed to one member's personal key. ``wrapped`` is None while the grant waits
    for someone who holds the unit key (a member's next request, or the escrow) to seal it."""

    __tablename__ = "unit_key_grants"

    unit_key_id: Mapped[str] = mapped_column(
        ForeignKey("compartment_keys.key_id", ondelete="CASCADE"), primary_key=True
    )
    staff_key_id: Mapped[str] = mapped_column(
        ForeignKey("compartment_keys.key_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClueSealed(Base):
    """A clue's fields sealed under its content key (the compartment copy of ``clues.content`` …), and the
    public half of the clue's key pair (derived from the content key): follow-ups, file keys and additions
    written without the content key are sealed to it. NULL for a clue registered before the key pair
    existed, until a holder opens it."""

    __tablename__ = "clue_sealed"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    accused: Mapped[bytes] = mapped_column(LargeBinary)
    classification: Mapped[bytes] = mapped_column(LargeBinary)
    public: Mapped[str | None] = mapped_column(Text)  # the clue key pair's public key document (JSON)


class ClueKeyWrap(Base):
    """A clue's content key sealed to one public key: the handling unit's, a person's, the escrow's."""

    __tablename__ = "clue_key_wraps"
    __table_args__ = (UniqueConstraint("clue_id", "key_id"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("compartment_keys.key_id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # escrow | unit | supervisor | assignee
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
