from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, Text
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


class SubmittedForm(Base):
    """A report form that was filed or is being filed, by HMAC(server key, the form's key) only: so a
    resend reaching any server process files nothing (``service.intake.form_keys``)."""

    __tablename__ = "submitted_forms"

    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(8))  # "pending" while being filed, then "filed"
    # pending: the claim holds until then (a process that died while filing gives it up);
    # filed: the sealed receipt view is kept until then, for a second copy of the same form (a double tap)
    hold_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    view: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
