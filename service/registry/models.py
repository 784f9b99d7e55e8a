from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base, IdColumn, UTCDateTime

SOURCES = ("public_report", "superior_assigned", "self_inspection", "voluntary_confession")
CHANNELS = ("web", "email", "hotline", "letter", "visit", "staff")


class Clue(Base):
    """A registered clue. Content, the accused person's details and the classification evidence are case-key
    envelopes; submitter details are an identity-key envelope. Plain columns are what the ledger filters on."""

    __tablename__ = "clues"
    __table_args__ = (
        Index("ix_clues_assignee_due", "assignee_id", "due_at", "id"),
        Index("ix_clues_status_due", "status", "due_at", "id"),
        Index("ix_clues_received", "received_at", "id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    registry_number: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(24), index=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16))
    real_name: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    needs_triage: Mapped[bool] = mapped_column(Boolean)
    taxonomy_version: Mapped[str] = mapped_column(String(32))

    content: Mapped[bytes] = mapped_column(
        LargeBinary
    )  # case key: text (personal data masked), incident, hint
    accused: Mapped[bytes] = mapped_column(LargeBinary)  # case key: name, unit, position, rank, region
    classification: Mapped[bytes] = mapped_column(LargeBinary)  # case key: scores and evidence
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)  # identity key: submitter, unmasked text
    # Keyed hash of the accused person's normalised name and unit: links repeat reports without plaintext.
    accused_key: Mapped[str | None] = mapped_column(String(64), index=True)
    accused_unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), index=True)

    handling_unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), index=True)
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    categories: Mapped[list[ClueCategory]] = relationship(lazy="raise", cascade="all, delete-orphan")


class ClueCategory(Base):
    __tablename__ = "clue_categories"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(48), primary_key=True, index=True)


class RegistryCounter(Base):
    """The last registry number issued per prefix and year; incremented inside the registering transaction,
    so numbers have no gaps (a rolled-back registration gives its number back)."""

    __tablename__ = "registry_counters"

    prefix: Mapped[str] = mapped_column(String(10), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer)
