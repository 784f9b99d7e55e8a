"""Dossiers exported for a hand-off, and the receivers' feedback on them.

Plain columns hold ids, codes, counts and the dossier's hash; the feedback's words are a case-key envelope
bound to ``dossier_feedback/<id>/body`` (staff write what the receiving organ said; it may name people).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id


class Dossier(Base):
    """One export: which clue and hand-off, its hash (of the signed manifest), the signing key, who, when."""

    __tablename__ = "dossiers"
    __table_args__ = (Index("ix_dossiers_clue_created", "clue_id", "created_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"))
    transfer_id: Mapped[str | None] = mapped_column(ForeignKey("clue_transfers.id", ondelete="SET NULL"))
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # hex hash of manifest.json
    hash_algorithm: Mapped[str] = mapped_column(String(16))  # sha256 | sm3
    key_id: Mapped[str] = mapped_column(String(64))
    file_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)  # bytes of the ZIP
    identity_included: Mapped[bool] = mapped_column(Boolean, default=False)
    identity_release_id: Mapped[str | None] = mapped_column(String(36))  # the custody release that added it
    created_by: Mapped[str] = mapped_column(String(64))  # audit actor string
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The ZIP as exported, stream-encrypted in the blob store under a key sealed with the case key
    # (binding ``dossiers/<id>/zip``); older rows kept none.
    blob_id: Mapped[str | None] = mapped_column(String(32))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)


class DossierFeedback(Base):
    """What the receiving organ reported back about a dossier (recorded by staff)."""

    __tablename__ = "dossier_feedback"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # case key: the feedback's words
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
