from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id


class ClueAddition(Base):
    """Something added to a clue after registration, add-only: an operator's note when the caller phones
    again with the code (``operator_addition``), the operator's record of a call (``call_record``), or
    the caller's confirmation or correction of the
    operator's record (``caller_confirmation``). Content is a case-key envelope bound to
    ``clue_additions/<id>/content``."""

    __tablename__ = "clue_additions"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    # The operator's record sealed to the clue's reporter key (service.messages), so the caller can read it
    # back on the status page with the code; None for additions the caller does not read back.
    reporter_copy: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The caller's words as said, when masking changed them (identity key, clue_additions/<id>/identity):
    # the content staff read is masked.
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))  # audit actor string
