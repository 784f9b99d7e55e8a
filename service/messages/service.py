"""Two-way messages on a clue, and linking stored attachments to clues and messages.

Staff side: the assigned investigator or a supervisor (``Action.exchange_messages`` plus the clue being
visible to them) lists and sends messages; each list is an audited read, each send an audited change.
Reporter side: whoever holds the receipt code (the caller has already checked it with
``service.intake.follow_up``) reads the thread through the reporter key and replies.

Invariant: what the reporter sees never names the staff member who wrote a message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments import documents
from service.attachments import service as attachments_service
from service.attachments.models import Attachment
from service.attachments.pipeline import attachment_binding
from service.audit import service as audit_service
from service.audit.service import PUBLIC_ACTOR, PendingEntry
from service.auth.permissions import Action, require
from service.auth.service import Principal
from service.classification import classifier
from service.compartments import items as clue_items
from service.messages import reporter_key as rk
from service.messages.models import FROM_REPORTER, TO_REPORTER, Message, ReporterKey
from service.platform.blobs import BlobStore
from service.platform.crypto.keys import KeyRing
from service.platform.db import new_id
from service.platform.errors import Conflict, Invalid, NotFound
from service.platform.runtime import Configured
from service.platform.timeutil import as_utc, hour_floor, utcnow
from service.registry import service as registry_service
from service.registry.models import Clue

MAX_MESSAGE_CHARS = 10_000


@dataclass(frozen=True)
class AttachmentInfo:
    id: str
    kind: str
    size: int
    for_reporter: bool = False  # staff sent it to the reporter: the status page offers it for download


@dataclass(frozen=True)
class MessageView:
    id: str
    direction: str
    text: str
    created_at: datetime
    author_id: str | None  # staff views only; never given to the reporter
    attachments: tuple[AttachmentInfo, ...] = ()


def body_binding(message_id: str) -> str:
    return f"messages/{message_id}/body"


def reporter_binding(message_id: str) -> str:
    return f"messages/{message_id}/reporter"


def identity_binding(message_id: str) -> str:
    return f"messages/{message_id}/identity"


def clean_text(
    text: str, *, limit: int = MAX_MESSAGE_CHARS, what: tuple[str, str] = ("消息", "message")
) -> str:
    """A free text staff or a reporter typed: trimmed, not empty, at most ``limit`` characters, no control
    characters; ``what`` names it in the error (Chinese, English)."""
    zh, en = what
    text = (text or "").strip()
    if not text:
        raise Invalid(f"请填写{zh}内容", message_en=f"the {en} is empty")
    if len(text) > limit:
        raise Invalid(f"{zh}不能超过 {limit} 字", message_en=f"at most {limit} characters")
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
        raise Invalid(f"{zh}含有无效字符", message_en=f"the {en} contains control characters")
    return text


# --- Attachments ------------------------------------------------------------------------------------


async def _attachments_by_message(
    session: AsyncSession, clue_id: str
) -> dict[str | None, list[AttachmentInfo]]:
    rows = await session.execute(
        select(
            Attachment.message_id,
            Attachment.id,
            Attachment.kind,
            Attachment.size,
            Attachment.reporter_key.is_not(None),
        )
        .where(Attachment.clue_id == clue_id)
        .order_by(Attachment.created_at, Attachment.id)
    )
    grouped: dict[str | None, list[AttachmentInfo]] = {}
    for message_id, attachment_id, kind, size, for_reporter in rows:
        grouped.setdefault(message_id, []).append(
            AttachmentInfo(attachment_id, kind, size, bool(for_reporter))
        )
    return grouped


# --- The reporter key -------------------------------------------------------------------------------


def _wrapped(row: ReporterKey) -> rk.WrappedReporterKey:
    return rk.WrappedReporterKey(row.public_key, row.salt, row.wrapped_private)


async def ensure_reporter_key(session: AsyncSession, *, clue_id: str, code: str) -> ReporterKey:
    """The clue's reporter key, created under ``code`` if it has none yet."""
    row = await session.get(ReporterKey, clue_id)
    if row is None:
        made = rk.new_reporter_key(code, clue_id)
        row = ReporterKey(
            clue_id=clue_id,
            public_key=made.public_key,
            salt=made.salt,
            wrapped_private=made.wrapped_private,
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
    return row


async def rewrap_reporter_key(session: AsyncSession, *, clue_id: str, old_code: str, new_code: str) -> None:
    row = await session.get(ReporterKey, clue_id)
    if row is None:
        await ensure_reporter_key(session, clue_id=clue_id, code=new_code)
        return
    made = rk.rewrap(_wrapped(row), old_code, new_code, clue_id)
    row.salt, row.wrapped_private = made.salt, made.wrapped_private
    await session.flush()


async def _seal_both(
    session: AsyncSession, *, message: Message, text: str, keys: KeyRing, staff_text: str | None = None
) -> None:
    """The message for staff (``staff_text``, if it differs: masked) and for the reporter, as written.
    Staff's copy goes to the clue's key (compartments: only its readers open it), or the case key for an
    older clue."""
    plaintext = text.encode("utf-8")
    seal = await clue_items.sealer(session, clue_id=message.clue_id, keys=keys)
    message.body = seal((staff_text or text).encode("utf-8"), body_binding(message.id))
    key = await session.get(ReporterKey, message.clue_id)
    message.reporter_copy = (
        rk.seal_for_reporter(key.public_key, plaintext, reporter_binding(message.id)) if key else None
    )


# --- Staff side -------------------------------------------------------------------------------------


async def staff_list(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing
) -> list[MessageView]:
    require(principal.roles, Action.exchange_messages)
    await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    opener = await clue_items.opener(session, clue_id=clue_id, unlocked=principal.unlocked, keys=keys)
    rows = (
        await session.execute(
            select(Message).where(Message.clue_id == clue_id).order_by(Message.created_at, Message.id)
        )
    ).scalars()
    files = await _attachments_by_message(session, clue_id)
    views = [
        MessageView(
            id=m.id,
            direction=m.direction,
            text=opener.open(m.body, body_binding(m.id)).decode("utf-8"),
            created_at=m.created_at,
            author_id=m.author_id,
            attachments=tuple(files.get(m.id, ())),
        )
        for m in rows
    ]
    await audit_service.record(
        session,
        actor=principal.actor,
        action="message.read",
        object_type="clue",
        object_id=clue_id,
        details={"message_ids": [v.id for v in views]},
    )
    return views


async def staff_send(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing, text: str
) -> MessageView:
    require(principal.roles, Action.exchange_messages)
    await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    text = clean_text(text)
    message = Message(
        id=new_id(), clue_id=clue_id, direction=TO_REPORTER, author_id=principal.staff_id, created_at=utcnow()
    )
    await _seal_both(session, message=message, text=text, keys=keys)
    session.add(message)
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="message.sent",
        object_type="clue",
        object_id=clue_id,
        details={"message_id": message.id, "reporter_copy": message.reporter_copy is not None},
    )
    return MessageView(message.id, TO_REPORTER, text, message.created_at, principal.staff_id)


def reporter_file_binding(blob_id: str) -> str:
    return f"{attachment_binding(blob_id)}/reporter"


async def staff_send_file(
    session: AsyncSession,
    *,
    clue_id: str,
    principal: Principal,
    runtime: Configured,
    store: BlobStore,
    chunks: AsyncIterable[bytes],
    text: str = "",
) -> MessageView:
    """A file for the reporter, with an optional message: cleaned by the attachment pipeline like every
    upload (a file that cannot be cleaned is refused, never sealed: it is meant to leave), its key sealed
    for staff (the clue's key, or the case key for an older clue) and for the reporter (reporter key),
    who downloads it from the status page. Audited as ``message.sent`` and ``clue.attachments_added``."""
    require(principal.roles, Action.exchange_messages)
    await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    text = clean_text(text) if (text or "").strip() else ""
    key = await session.get(ReporterKey, clue_id)
    if key is None:
        # Every receipt comes with one; a clue from a staff source (no reporter holds a code) has none.
        raise Conflict(
            "此线索没有举报人查询码对应的密钥，文件无法加密给举报人，不能发送",
            message_en="this clue has no reporter key (no receipt code): a file cannot be sent to a reporter",
        )
    for_reporter: dict[str, bytes] = {}
    seal = await clue_items.sealer(session, clue_id=clue_id, keys=runtime.keys)

    def wrap(file_key: bytes, binding: str) -> bytes:
        blob_id = binding.removeprefix("attachment/")
        for_reporter[blob_id] = rk.seal_for_reporter(key.public_key, file_key, reporter_file_binding(blob_id))
        return seal(file_key, binding)

    try:
        record = await attachments_service.store_upload(
            chunks,
            store=store,
            wrap=wrap,
            max_size=runtime.settings.letter_page_max_bytes,
            allowed=documents.ALLOWED,
            scratch_dir=runtime.settings.attachment_scratch_dir,
        )
    except Invalid as exc:
        raise Invalid(
            f"文件未发送：{exc.message}。发给举报人的文件必须能可靠去除元数据",
            message_en=f"file not sent: {exc.message_en}; a file for the reporter must be cleanable",
        ) from None
    try:
        message = Message(
            id=new_id(),
            clue_id=clue_id,
            direction=TO_REPORTER,
            author_id=principal.staff_id,
            created_at=utcnow(),
        )
        await _seal_both(session, message=message, text=text, keys=runtime.keys)
        session.add(message)
        await session.flush()
        (row,) = await attachments_service.add_attachments(
            session,
            clue_id=clue_id,
            message_id=message.id,
            files=[attachments_service.UploadedFile(record=record)],
            keys=runtime.keys,
            actor=principal.actor,
        )
        row.reporter_key = for_reporter[record.blob_id]
        await session.flush()
        await audit_service.record(
            session,
            actor=principal.actor,
            action="message.sent",
            object_type="clue",
            object_id=clue_id,
            details={"message_id": message.id, "reporter_copy": True, "attachment_ids": [row.id]},
        )
    except BaseException:
        await store.delete(record.blob_id)
        raise
    info = AttachmentInfo(row.id, row.kind, row.size, True)
    return MessageView(message.id, TO_REPORTER, text, message.created_at, principal.staff_id, (info,))


# --- Reporter side (the caller checked the receipt code) --------------------------------------------


async def reporter_list(session: AsyncSession, *, clue_id: str, code: str) -> list[MessageView]:
    """The thread as the reporter sees it: no author ids; a message sealed before the reporter key existed
    is shown as unavailable rather than opened with the case key (intake holds no case private key)."""
    key = await ensure_reporter_key(session, clue_id=clue_id, code=code)
    private = rk.unwrap(_wrapped(key), code, clue_id)
    rows = await session.execute(  # not the case-key body: the reporter's side may not read it
        select(Message.id, Message.direction, Message.reporter_copy, Message.created_at)
        .where(Message.clue_id == clue_id)
        .order_by(Message.created_at, Message.id)
    )
    files = await _attachments_by_message(session, clue_id)
    views = []
    for m in rows:
        if m.reporter_copy is None:
            text = ""
        else:
            text = rk.open_for_reporter(private, m.reporter_copy, reporter_binding(m.id)).decode("utf-8")
        views.append(MessageView(m.id, m.direction, text, m.created_at, None, tuple(files.get(m.id, ()))))
    return views


async def _reporter_stamp(session: AsyncSession, clue_id: str) -> datetime:
    """When an anonymous reporter's message arrived, kept as for their first report: the hour
    (``hour_floor``), but never before the thread's last message, so the conversation keeps its order (a
    reply still follows the question it answers, which the order shows anyway: nothing finer is told)."""
    last = await session.scalar(select(func.max(Message.created_at)).where(Message.clue_id == clue_id))
    stamp = hour_floor(utcnow())
    return stamp if last is None or as_utc(last) < stamp else as_utc(last) + timedelta(microseconds=1)


async def reporter_send(
    session: AsyncSession,
    *,
    clue_id: str,
    code: str,
    keys: KeyRing,
    name_key: bytes,
    text: str,
    files: Sequence[attachments_service.UploadedFile] = (),
) -> MessageView:
    """A receipt holder's message. ``name_key``: ``runtime.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL)``,
    which opens the clue's keyed accused names, so the accused stays readable while the reporter's own
    name is masked (this process cannot open the case key where the names are)."""
    text = clean_text(text) if (text or "").strip() or not files else (text or "").strip()
    await ensure_reporter_key(session, clue_id=clue_id, code=code)
    real_name, accused_names = (
        await session.execute(select(Clue.real_name, Clue.accused_names).where(Clue.id == clue_id))
    ).one()
    anonymous = not real_name
    message = Message(
        id=new_id(hour_only=anonymous),
        clue_id=clue_id,
        direction=FROM_REPORTER,
        author_id=None,
        created_at=await _reporter_stamp(session, clue_id) if anonymous else utcnow(),
    )
    # The reporter's words are masked for staff like the first report; the original is an identity detail.
    masked = classifier.mask_texts(
        {"text": text}, accused=classifier.keyed_accused_names(accused_names, key=name_key)
    )
    if masked.originals:
        message.identity = keys.seal_identity(
            json.dumps(masked.originals, ensure_ascii=False).encode("utf-8"), identity_binding(message.id)
        )
    await _seal_both(session, message=message, text=text, keys=keys, staff_text=masked.texts["text"])
    session.add(message)
    await session.flush()
    received = {"message_id": message.id, "attachments": len(files)}
    await audit_service.record_many(
        session,
        [PendingEntry(PUBLIC_ACTOR, "message.received", "clue", clue_id, received, hour_only=anonymous)],
    )
    rows = await attachments_service.add_attachments(
        session,
        clue_id=clue_id,
        message_id=message.id,
        files=files,
        keys=keys,
        actor=PUBLIC_ACTOR,
        hour_only=anonymous,
    )
    infos = tuple(AttachmentInfo(r.id, r.kind, r.size) for r in rows)
    return MessageView(message.id, FROM_REPORTER, text, message.created_at, None, infos)


async def reporter_download(
    session: AsyncSession, *, clue_id: str, code: str, attachment_id: str, store: BlobStore
) -> attachments_service.Download:
    """A file staff sent to the reporter, opened with the reporter key (the code unwraps it), cleaned copy
    only, verified as it streams. Anything else — the reporter's own uploads, another clue's file, an
    unknown id — does not exist here. Audited as ``attachment.reporter_downloaded``."""
    row = (
        await session.execute(  # only the columns the intake role may read (custody/db_roles.py)
            select(
                Attachment.id,
                Attachment.blob_id,
                Attachment.kind,
                Attachment.size,
                Attachment.message_id,
                Attachment.reporter_key,
            )
            .join(Message, Message.id == Attachment.message_id)
            .where(
                Attachment.id == attachment_id[:36],
                Attachment.clue_id == clue_id,
                Message.direction == TO_REPORTER,
                Attachment.reporter_key.is_not(None),
            )
        )
    ).first()
    if row is None or row.reporter_key is None:
        raise NotFound("文件不存在", message_en="file not found")
    key = await ensure_reporter_key(session, clue_id=clue_id, code=code)
    private = rk.unwrap(_wrapped(key), code, clue_id)
    file_key = rk.open_for_reporter(private, row.reporter_key, reporter_file_binding(row.blob_id))
    await audit_service.record(
        session,
        actor=PUBLIC_ACTOR,
        action="attachment.reporter_downloaded",
        object_type="clue",
        object_id=clue_id,
        details={"attachment_id": row.id, "message_id": row.message_id, "size": row.size},
    )
    return await attachments_service.stream_file(row, file_key, store)
