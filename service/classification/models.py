"""Tables of the classification domain: staff corrections and links between clues.

Plain columns hold ids, category ids, versions and times only; the correction's reason is a case-key
envelope bound to ``classification_corrections/<id>/reason``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, IdColumn, UTCDateTime


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
