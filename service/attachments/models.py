"""Stored attachments: one row per encrypted blob, linked to a clue and, for replies, to a message.

Invariants: the file key exists only wrapped (``wrapped_key``, bound to ``attachment/<blob_id>``: to the
clue's own key when the clue is known at upload — a follow-up, a staff upload, a hotline addition — so only
those who hold a wrap of its content key open it; to the case key for a first report's files and older
clues); the name the reporter's device gave the file is an envelope (it can
identify someone: "张三的举报.pdf"), so it is sealed to the identity key and staff see a neutral name
("附件1.docx"); a kept original is a separate blob whose key is wrapped to the
identity key. Plain columns hold what the registry needs to list and serve files: kind, sizes, digest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    blob_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(100))  # media type, from the bytes (FileKind value)
    size: Mapped[int] = mapped_column(Integer)  # sanitised plaintext bytes
    sha256: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)  # clue key or case key: the per-file key
    name: Mapped[bytes | None] = mapped_column(
        LargeBinary
    )  # identity key: the name as uploaded (older rows: case key)
    # Fixed labels with counts ("office:comments=1"), never a string from the file.
    removed_metadata: Mapped[str] = mapped_column(String(2000), default="")
    # Set when the file could not be cleaned: the blob holds the received bytes and ``wrapped_key`` is
    # sealed to the identity key; staff see that the file exists and this reason code, never its content.
    sealed_reason: Mapped[str | None] = mapped_column(String(40))
    original_blob_id: Mapped[str | None] = mapped_column(String(32))
    original_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)  # identity key
    # A file staff sent to the reporter: the file key also sealed to the clue's reporter key (binding
    # ``attachment/<blob_id>/reporter``), so the receipt holder downloads it from the status page.
    reporter_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
