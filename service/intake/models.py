from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id


class Receipt(Base):
    """A receipt code (查询码), stored only as HMAC(server secret, code)."""

    __tablename__ = "receipts"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_aloud: Mapped[bool] = mapped_column(
        Boolean, default=False
    )  # given out by phone: replace on first use
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
