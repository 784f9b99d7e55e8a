"""A legal hold stops retention from purging a clue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, UTCDateTime


class LegalHold(Base):
    """One row per held clue. The reason is sealed to the clue's own key (else the case key), bound to
    ``legal_holds/<clue id>/reason``."""

    __tablename__ = "legal_holds"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    set_by: Mapped[str] = mapped_column(String(36))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[bytes] = mapped_column(LargeBinary)
