"""Staff access to stored attachments: list a visible clue's files, stream one back decrypted.

Invariants:
- Who may see a file is the registry's rule (``registry_service.get_visible_clue``: supervisors, or the
  investigator the clue is assigned to); for anyone else the file does not exist (404), so nothing leaks.
  A file key wrapped to the clue's own key (compartments) opens only for a requester who holds a wrap of
  the clue's content key (else 403); older clues' file keys are wrapped to the case key.
- Plaintext is released segment by segment, each only after its tag verified (``decrypt_stream``). The
  first segments are verified before the answer starts, so a blob that is missing, damaged at its start or
  wrapped for another key is refused with a clear error instead of a broken download. A segment damaged
  further on stops the stream: the client never receives the declared Content-Length, so it sees an
  incomplete download, never unverified bytes.
- Every download is an audited read in the caller's transaction, which commits before the first byte.
- Only the sanitised copy is served. A kept original (identity key), a sealed file (one that could not be
  cleaned with confidence: its key is wrapped to the identity key) and the name the reporter's device
  gave the file (identity key; it may identify: "张三的举报.pdf") are never served here. Staff see a
  sealed file's existence and reason, and a neutral name for every file ("附件1.docx").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments.cleaners import Uncleanable
from service.attachments.models import Attachment
from service.attachments.pipeline import (
    AttachmentRecord,
    AttachmentTooLarge,
    WrapKey,
    attachment_binding,
    store_attachment,
)
from service.attachments.sniff import EXTENSIONS, DisallowedFileType, FileKind
from service.audit import service as audit_service
from service.auth.permissions import Action, require
from service.auth.service import Principal
from service.compartments import items as clue_items
from service.platform.blobs import BlobStore, BlobStoreError
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import CaseKeyAbsent, KeyRing
from service.platform.crypto.stream import StreamError, decrypt_stream
from service.platform.db import new_id
from service.platform.errors import DomainError, Invalid, NotFound, TooLarge
from service.platform.timeutil import hour_floor, utcnow
from service.registry import service as registry_service

log = logging.getLogger("tipline.attachments")


class AttachmentSealed(DomainError):
    """The file could not be cleaned with confidence; it is kept under the identity key and not served."""

    status_code = 409
    code = "attachment_sealed"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"此附件未能可靠地去除元数据，已封存（仅身份密钥可开启），不提供下载："
            f"{sealed_reason_text(reason)}",
            message_en=f"This file cannot be cleaned with confidence; it is sealed, not served ({reason}).",
        )


def sealed_reason_text(reason: str) -> str:
    return Uncleanable.REASONS.get(reason, "未能清理")


class AttachmentUnavailable(DomainError):
    """The stored file is missing or failed verification; nothing of it is served."""

    status_code = 409
    code = "attachment_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "附件文件缺失或校验失败，未提供任何内容。请联系系统管理员。",
            message_en="The stored file is missing or failed verification; nothing was served.",
        )


@dataclass(frozen=True)
class AttachmentListing:
    id: str
    message_id: str | None  # set for files sent with a reporter's reply
    kind: str
    size: int
    removed_metadata: tuple[str, ...]  # fixed labels with counts, never a string from the file
    created_at: datetime
    name: str  # neutral ("附件1.docx"); the uploaded name is sealed to the identity key
    sealed_reason: str | None  # set: not cleaned, sealed, not downloadable


@dataclass(frozen=True)
class Download:
    attachment_id: str
    media_type: str
    size: int
    filename: str  # generated; never the uploaded name
    chunks: AsyncIterator[bytes]


def _extension(kind: str) -> str:
    try:
        return EXTENSIONS.get(FileKind(kind), "bin")
    except ValueError:
        return "bin"


def neutral_name(position: int, kind: str) -> str:
    """What staff see for the clue's ``position``-th file (1-based): never the name the reporter gave it."""
    return f"附件{position}.{_extension(kind)}"


def download_name(attachment_id: str, kind: str) -> str:
    """A safe file name: ASCII letters, digits and hyphens, from the id and the kind detected from bytes."""
    extension = _extension(kind)
    stem = "".join(ch for ch in attachment_id if ch.isascii() and (ch.isalnum() or ch == "-"))[:36]
    return f"attachment-{stem}.{extension}"


def _not_found() -> NotFound:
    return NotFound("附件不存在", message_en="attachment not found")


async def list_attachments(
    session: AsyncSession, *, clue_id: str, principal: Principal
) -> list[AttachmentListing]:
    """The clue's files, the report's and every reply's, oldest first (no content, so no audit entry)."""
    require(principal.roles, Action.list_attachments)
    await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = (
        await session.execute(
            select(Attachment)
            .where(Attachment.clue_id == clue_id)
            .order_by(Attachment.created_at, Attachment.id)
        )
    ).scalars()
    return [
        AttachmentListing(
            id=row.id,
            message_id=row.message_id,
            kind=row.kind,
            size=row.size,
            removed_metadata=tuple(name for name in row.removed_metadata.split(",") if name),
            created_at=row.created_at,
            name=neutral_name(position, row.kind),
            sealed_reason=row.sealed_reason,
        )
        for position, row in enumerate(rows, start=1)
    ]


async def open_download(
    session: AsyncSession, *, attachment_id: str, principal: Principal, keys: KeyRing, store: BlobStore
) -> Download:
    """The sanitised file, decrypted as it streams; audited as ``attachment.downloaded``.

    Raises ``NotFound`` (no such file, or its clue is not visible to the caller), ``Forbidden`` (the clue's
    key is not wrapped to the caller) or :class:`AttachmentUnavailable` (blob missing or damaged at its
    start, key not openable).
    """
    require(principal.roles, Action.download_attachment)
    row = await session.get(Attachment, attachment_id[:36])
    if row is None:
        raise _not_found()
    try:
        await registry_service.get_visible_clue(session, clue_id=row.clue_id, principal=principal)
    except NotFound:
        raise _not_found() from None
    if row.sealed_reason:
        raise AttachmentSealed(row.sealed_reason)
    opener = await clue_items.opener(session, clue_id=row.clue_id, unlocked=principal.unlocked, keys=keys)
    await audit_service.record(
        session,
        actor=principal.actor,
        action="attachment.downloaded",
        object_type="clue",
        object_id=row.clue_id,
        details={"attachment_id": row.id, "message_id": row.message_id, "size": row.size},
    )
    try:
        file_key = opener.open(row.wrapped_key, attachment_binding(row.blob_id))
    except CaseKeyAbsent:
        raise
    except EnvelopeError:
        log.warning("attachment %s: file key did not open", row.id)
        raise AttachmentUnavailable() from None
    return await stream_file(row, file_key, store)


class StoredFile(Protocol):
    id: str
    blob_id: str
    kind: str
    size: int


async def stream_file(row: StoredFile, file_key: bytes, store: BlobStore) -> Download:
    """The stored file under its opened ``file_key``, verified as it streams (first segments before the
    answer starts). Also the reporter's download of a file staff sent (``messages.service``)."""
    plain = decrypt_stream(file_key, attachment_binding(row.blob_id), store.open_reader(row.blob_id))
    try:
        first = await anext(plain, b"")
    except (StreamError, BlobStoreError) as exc:
        log.warning("attachment %s refused: %s", row.id, type(exc).__name__)
        raise AttachmentUnavailable() from None
    return Download(
        attachment_id=row.id,
        media_type=row.kind,
        size=row.size,
        filename=download_name(row.id, row.kind),
        chunks=_rest(row.id, first, plain),
    )


async def _rest(attachment_id: str, first: bytes, plain: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in plain:
            yield chunk
    except StreamError as exc:
        # Headers are gone: stop short of Content-Length so the client knows the download is incomplete.
        log.warning("attachment %s stopped mid-stream: %s", attachment_id, type(exc).__name__)
        raise
    finally:
        await plain.aclose()  # type: ignore[attr-defined]


# --- Adding files to a clue: the one writer of attachment rows ---------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A stored upload waiting to be linked: the pipeline's record and the name the device gave it."""

    record: AttachmentRecord
    filename: str | None = None
    original: AttachmentRecord | None = None  # kept original, key wrapped to the identity key
    # A new report's file, stored before its clue exists: ``record.wrapped_key`` is the plain file key, held
    # in memory only, and sealed to the clue's own key when the rows are staged at registration.
    key_pending: bool = False


def keep_key(file_key: bytes, binding: str) -> bytes:
    """The ``wrap_key`` of a new report's files: the key stays plain in memory until the clue's key exists
    (``UploadedFile.key_pending``)."""
    return file_key


def _size_text(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


async def store_upload(
    chunks: AsyncIterable[bytes],
    *,
    store: BlobStore,
    wrap: WrapKey,
    max_size: int,
    allowed: tuple[str, ...],
    wrap_sealed: WrapKey | None = None,
    scratch_dir: Path | None = None,
) -> AttachmentRecord:
    """One staff upload through the pipeline; ``wrap_sealed`` (the identity key) keeps a file that cannot
    be cleaned sealed instead of refusing it."""
    try:
        record = await store_attachment(
            chunks,
            store=store,
            wrap_key=wrap,
            max_size=max_size,
            wrap_sealed_key=wrap_sealed,
            scratch_dir=scratch_dir,
        )
    except AttachmentTooLarge as exc:
        raise TooLarge(
            f"文件太大（上限 {_size_text(exc.limit)}）",
            message_en=f"file larger than {exc.limit} bytes",
        ) from None
    except DisallowedFileType as exc:
        raise Invalid(
            "不支持的文件类型、文件已损坏或无法清理元数据",
            message_en=f"file type not allowed, file damaged or not cleanable ({exc.reason})",
        ) from None
    if not str(record.kind.value).startswith(allowed):
        await store.delete(record.blob_id)
        raise Invalid("此处不接受这种文件", message_en=f"expected {', '.join(allowed)}")
    return record


def stage_attachments(
    session: AsyncSession,
    *,
    clue_id: str,
    message_id: str | None,
    files: Sequence[UploadedFile],
    keys: KeyRing,
    actor: str,
    hour_only: bool = False,
    seal_pending: Callable[[bytes, str], bytes] | None = None,
) -> tuple[list[Attachment], audit_service.PendingEntry | None]:
    """The one writer of attachment rows: adds a clue's rows to the session without a round trip (they go
    out with the transaction's next flush) and returns them with their audit entry for the caller to
    append, so a batch of registrations appends all its entries under one lock per chain. ``hour_only``:
    the files came with an anonymous report, whose rows keep no finer time than the hour. ``seal_pending``
    (the clue's sealer, ``compartments.items``) seals the file keys a new report's uploads held in memory."""
    rows = []
    now = hour_floor(utcnow()) if hour_only else utcnow()
    for upload in files:
        record = upload.record
        wrapped_key = record.wrapped_key
        if upload.key_pending:
            assert seal_pending is not None, "a new report's file key needs its clue's sealer"
            wrapped_key = seal_pending(wrapped_key, record.binding)
        row = Attachment(
            id=new_id(hour_only=hour_only),
            clue_id=clue_id,
            message_id=message_id,
            blob_id=record.blob_id,
            kind=str(record.kind.value),
            size=record.size,
            sha256=record.sha256,
            wrapped_key=wrapped_key,
            removed_metadata=",".join(record.removed_metadata)[:2000],
            sealed_reason=record.sealed_reason,
            original_blob_id=upload.original.blob_id if upload.original else None,
            original_wrapped_key=upload.original.wrapped_key if upload.original else None,
            created_at=now,
        )
        if upload.filename:
            # Reporter-written text that may identify them ("张三的举报.pdf"): identity key only.
            row.name = keys.seal_identity(upload.filename.encode("utf-8"), f"attachments/{row.id}/name")
        rows.append(row)
    if not rows:
        return [], None
    session.add_all(rows)
    return rows, audit_service.PendingEntry(
        actor=actor,
        action="clue.attachments_added",
        object_type="clue",
        object_id=clue_id,
        details={"attachment_ids": [r.id for r in rows], "message_id": message_id},
        hour_only=hour_only,
    )


async def add_attachments(
    session: AsyncSession,
    *,
    clue_id: str,
    message_id: str | None,
    files: Sequence[UploadedFile],
    keys: KeyRing,
    actor: str,
    hour_only: bool = False,
) -> list[Attachment]:
    """``stage_attachments``, flushed and audited now."""
    rows, entry = stage_attachments(
        session,
        clue_id=clue_id,
        message_id=message_id,
        files=files,
        keys=keys,
        actor=actor,
        hour_only=hour_only,
    )
    if entry is not None:
        await session.flush()
        await audit_service.record_many(session, [entry])
    return rows


async def reseal_uploaded_names(session: AsyncSession, *, keys: KeyRing, actor: str) -> int:
    """Maintenance: uploaded file names sealed to the CASE key (rows stored before names went to the
    identity key) are re-sealed to the identity key, and the case-key envelope is replaced, so staff keep
    only the neutral name ("附件1.docx") and the name the reporter's device gave opens only in a custody
    release. Needs the case private key (run where it is: ``tipline attachments reseal-names``). A row
    already under the identity key is left as it is, so a second run changes nothing. One audit entry per
    clue, with the count only. Returns how many names were re-sealed."""
    if not keys.can_open("case"):
        raise Invalid("此操作需要案件私钥", message_en="re-sealing old names needs the case private key")
    rows = (await session.scalars(select(Attachment).where(Attachment.name.is_not(None)))).all()
    per_clue: dict[str, int] = {}
    for row in rows:
        assert row.name is not None
        if not Envelope.from_bytes(row.name).key_id.startswith("case-"):
            continue  # already under the identity key
        binding = f"attachments/{row.id}/name"
        row.name = keys.seal_identity(keys.open(row.name, binding), binding)
        per_clue[row.clue_id] = per_clue.get(row.clue_id, 0) + 1
    await session.flush()
    await audit_service.record_many(
        session,
        [
            audit_service.PendingEntry(
                actor, "attachment.names_resealed", "clue", clue_id, {"attachments": n}
            )
            for clue_id, n in sorted(per_clue.items())
        ],
    )
    return sum(per_clue.values())
