"""Tables of the classification domain: staff corrections and links between clues.

Plain columns hold ids, category ids, versions and times only; the correction's reason is a case-key
envelope bound to ``classification_corrections/<id>/reason``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime


class ClassificationCorrection(Base):
    """A staff member changed a clue's categories: old and new labels (JSON lists of category ids), the
    taxonomy version they belong to, who and when, and the sealed reason."""

    __tablename__ = "classification_corrections"
    __table_args__ = (Index("ix_classification_corrections_clue_at", "clue_id", "created_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"))
    old_labels: Mapped[str] = mapped_column(String(1000))  # JSON list of category ids
    new_labels: Mapped[str] = mapped_column(String(1000))  # JSON list of category ids
    taxonomy_version: Mapped[str] = mapped_column(String(32))
    reason: Mapped[bytes] = mapped_column(LargeBinary)  # case key
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClueLink(Base):
    """Two clues linked (never merged, never hidden). One row per unordered pair and kind:
    ``clue_id < other_id``. Kinds: ``near_duplicate`` (MinHash similarity of the masked texts)."""

    __tablename__ = "clue_links"
    __table_args__ = (Index("ix_clue_links_other", "other_id", "clue_id"),)

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    other_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    similarity: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NearDuplicateBand(Base):
    """The LSH index of near-duplicate signatures: one row per (band, bucket) a clue's signature falls in.
    Candidates for a new clue are the clues sharing a bucket with it; no scan over older clues."""

    __tablename__ = "near_duplicate_bands"
    __table_args__ = (Index("ix_near_duplicate_bands_clue", "clue_id"),)

    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)


class NearDuplicatePending(Base):
    """Clues registered but not yet indexed; intake adds a row in its own insert, with the text's keyed
    signature it computed while it held the text, and the periodic near-duplicate task takes them in
    chunks (no job row per intake batch) and compares signatures without opening any report."""

    __tablename__ = "near_duplicate_pending"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    # NULL: queued before intake signed (revision 0034), or re-queued by 0024: signed from the case key.
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
