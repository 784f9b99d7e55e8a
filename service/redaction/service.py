"""Redacting a clue's texts and files before they go onward, and correcting automatic masking.

A redaction marks spans of a text (the report, a message, an addition's text field, one of the accused
person's fields: name, unit, position, rank, region) by character offsets
of the text staff see, or rectangles on an image or PDF page, and produces a new version of that target:
the redacted text sealed with the case key like the content it replaces, or the covered file encrypted
into the blob store with its key wrapped to the case key like an attachment's. Versions build on each
other (offsets refer to the version named by ``base_version``; a stale base is refused), the stored
original is never changed, and reading it stays what it was (``registry_service.read_clue``,
``messages_service.staff_list``, ``attachments_service.open_download``).

What goes onward reads the latest version (:func:`shown_texts`, :func:`open_shown_file`): the hand-off
dossier and the redacted view of a clue.

Invariants:
- Who may redact: ``Action.redact`` and the clue visible to them (the assigned investigator, a
  supervisor); for anyone else the clue does not exist (404). A reason is required.
- Every version and every unmask request is audited in the same transaction (who, which target and
  version, the row id, a hash of the sealed reason that ties the row's reason to the tamper-evident
  chain); free text never goes into the audit trail in plaintext.
- An unmask reveals one masked span and nothing else, and only where the identity key is rebuilt from
  custodians' shares (two people besides the requesting supervisor): see :func:`apply_unmask`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments import service as attachments_service
from service.attachments.models import Attachment
from service.attachments.pipeline import attachment_binding, encrypt_bytes_into_blob
from service.attachments.sniff import FileKind
from service.audit import service as audit_service
from service.auth.permissions import Action, Role, require
from service.auth.service import Principal
from service.classification.pii import MASK_MARKERS, find_personal_data
from service.classification.results import PersonalDataSpan
from service.compartments import items
from service.compartments import service as compartments
from service.compartments.keys import Unlocked
from service.custody import service as custody_service
from service.messages import service as messages_service
from service.messages.models import Message
from service.platform.blobs import BlobStore, BlobStoreError
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import CaseKeyAbsent, KeyRing
from service.platform.crypto.stream import StreamError, decrypt_stream
from service.platform.db import new_id
from service.platform.errors import Conflict, Forbidden, Invalid, NotFound
from service.platform.timeutil import utcnow
from service.redaction import files
from service.redaction.models import Redaction, UnmaskRequest
from service.registry import service as registry_service
from service.registry.additions import ClueAddition
from service.registry.models import Clue

MARKER = "［已遮盖］"
MAX_SPANS = 200
MAX_REASON_CHARS = 1000
TEXT_TARGETS = ("report", "message", "addition", "accused")
ACCUSED_FIELDS = ("name", "unit", "position", "rank", "region")
# The text fields of each kind of addition that go onward (a dossier, the redacted view) and can be redacted.
# Left out: the operator's record of the registering call (``call_record``: its summary and the caller's
# words are the report itself, redacted as the report) and how to call the caller back (about reaching them).
ADDITION_FIELDS = {"operator_addition": ("text",), "caller_confirmation": ("correction",)}


@dataclass(frozen=True)
class TextTarget:
    """A redactable text: the report (``target_id`` is the clue), a message, an addition's field, or one of
    the accused person's fields (``accused``: ``target_id`` is the clue, ``field`` one of ACCUSED_FIELDS)."""

    kind: str
    target_id: str
    field: str = ""


@dataclass(frozen=True)
class VersionView:
    id: str
    clue_id: str
    target: str
    target_id: str
    field: str
    version: int
    action: str  # redact | unmask
    marks: dict[str, Any]  # {"spans": [[start, end], ...]} or {"regions": [...]} or {"unmasked": [...]}
    reason: str
    created_by: str
    created_at: datetime
    text: str | None  # the text of this version (text targets)
    kind: str | None  # the file of this version (attachments)
    size: int | None
    sha256: str | None


def _binding(row_id: str, field: str) -> str:
    return f"redactions/{row_id}/{field}"


def _reason(text: str) -> str:
    return messages_service.clean_text(text, limit=MAX_REASON_CHARS, what=("理由", "reason"))


def _reason_digest(sealed: bytes) -> str:
    return hashlib.sha256(sealed).hexdigest()


async def _visible(session: AsyncSession, clue_id: str, principal: Principal, action: Action) -> Clue:
    require(principal.roles, action)
    return await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)


async def _latest(session: AsyncSession, target: str, target_id: str, field: str) -> Redaction | None:
    return await session.scalar(
        select(Redaction)
        .where(Redaction.target == target, Redaction.target_id == target_id, Redaction.field == field)
        .order_by(Redaction.version.desc())
        .limit(1)
    )


def _not_found() -> NotFound:
    return NotFound("要遮盖的内容不存在", message_en="no such text or file on this clue")


async def _opener(
    session: AsyncSession, clue_id: str, keys: KeyRing, unlocked: Unlocked | None
) -> items.ItemOpener:
    """Opens the clue's versions, reasons and file keys for this request (``compartments.items``)."""
    return await session.run_sync(lambda s: items.item_opener(s, keys, clue_id=clue_id, unlocked=unlocked))


async def _sealer(session: AsyncSession, clue_id: str, keys: KeyRing) -> Callable[[bytes, str], bytes]:
    """Seals the clue's new versions, marks and reasons: to its own key, so only its readers open them."""
    return await items.sealer(session, clue_id=clue_id, keys=keys)


async def _clue_field(
    session: AsyncSession, clue: Clue, name: str, keys: KeyRing, unlocked: Unlocked | None
) -> Any:
    """One of the clue's own fields, opened with the requester's key (a clue sealed before compartments:
    with the case key), as ``registry.service.read_clue`` opens them."""
    opened = await session.run_sync(lambda s: compartments.open_clue(s, clue_id=clue.id, unlocked=unlocked))
    data = opened[name] if opened is not None else keys.open(getattr(clue, name), f"clues/{clue.id}/{name}")
    return json.loads(data)


async def _original_text(
    session: AsyncSession,
    clue: Clue,
    target: TextTarget,
    opener: items.ItemOpener,
    unlocked: Unlocked | None,
) -> str:
    """The stored text staff read (version 0): masked at intake, never the identity-sealed original."""
    if target.kind == "report":
        if target.target_id != clue.id or target.field:
            raise _not_found()
        return str((await _clue_field(session, clue, "content", opener.keys, unlocked))["text"])
    if target.kind == "accused":
        if target.target_id != clue.id or target.field not in ACCUSED_FIELDS:
            raise _not_found()
        value = (await _clue_field(session, clue, "accused", opener.keys, unlocked)).get(target.field)
        if not isinstance(value, str) or not value:
            raise _not_found()
        return value
    if target.kind == "message":
        message = await session.get(Message, target.target_id[:36])
        if message is None or message.clue_id != clue.id or target.field:
            raise _not_found()
        return opener.open(message.body, messages_service.body_binding(message.id)).decode("utf-8")
    if target.kind == "addition":
        addition = await session.get(ClueAddition, target.target_id[:36])
        if addition is None or addition.clue_id != clue.id:
            raise _not_found()
        content = json.loads(opener.open(addition.content, f"clue_additions/{addition.id}/content"))
        value = content.get(target.field or "text")
        if not isinstance(value, str):
            raise _not_found()
        return value
    raise Invalid("遮盖对象无效", message_en=f"target must be one of {', '.join(TEXT_TARGETS)}")


def _open_text(row: Redaction, opener: items.ItemOpener) -> str:
    assert row.content is not None
    return str(json.loads(opener.open(row.content, _binding(row.id, "content")))["text"])


async def _current(
    session: AsyncSession, clue: Clue, target: TextTarget, opener: items.ItemOpener, unlocked: Unlocked | None
) -> tuple[int, str]:
    original = await _original_text(
        session, clue, target, opener, unlocked
    )  # checks the target is the clue's
    latest = await _latest(session, target.kind, target.target_id, target.field)
    return (latest.version, _open_text(latest, opener)) if latest else (0, original)


def _normalise_target(kind: str, target_id: str | None, field: str | None, clue_id: str) -> TextTarget:
    if kind not in TEXT_TARGETS:
        raise Invalid("遮盖对象无效", message_en=f"target must be one of {', '.join(TEXT_TARGETS)}")
    field = (field or "").strip()
    if kind == "addition":
        field = field or "text"
    if kind == "accused" and field not in ACCUSED_FIELDS:
        raise Invalid(
            "请选择被反映人的一项信息（姓名、单位、职务、职级、地区）",
            message_en=f"an accused target needs a field: one of {', '.join(ACCUSED_FIELDS)}",
        )
    return TextTarget(kind, clue_id if kind in ("report", "accused") else (target_id or ""), field)


def _check_base(current: int, base_version: int) -> None:
    if base_version != current:
        raise Conflict(
            f"内容已有更新的版本（第 {current} 版），请在最新版本上重新标注",
            message_en=f"the latest version is {current}; mark the spans on that version",
        )


def _spans(text: str, spans: Sequence[Sequence[int]], quotes: Sequence[str]) -> list[tuple[int, int]]:
    """Validated, sorted, merged spans: offsets as given plus every occurrence of each quoted passage."""
    found: list[tuple[int, int]] = []
    for index, span in enumerate(spans, start=1):
        if len(span) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in span):
            raise Invalid(f"第 {index} 段的位置无效", message_en=f"span {index}: give [start, end]")
        start, end = span
        if not 0 <= start < end <= len(text):
            raise Invalid(
                f"第 {index} 段超出文本范围（0–{len(text)}）",
                message_en=f"span {index} is outside the text (0 <= start < end <= {len(text)})",
            )
        found.append((start, end))
    for quote in quotes:
        quote = (quote or "").strip()
        if not quote:
            continue
        at = text.find(quote)
        if at < 0:
            raise Invalid(
                "文本中找不到要遮盖的原文", message_en="a quoted passage does not occur in the text"
            )
        while at >= 0:
            found.append((at, at + len(quote)))
            at = text.find(quote, at + len(quote))
    if not found:
        raise Invalid("请至少标出一段要遮盖的文字", message_en="mark at least one span")
    if len(found) > MAX_SPANS:
        raise Invalid(f"遮盖段数不能超过 {MAX_SPANS}", message_en=f"at most {MAX_SPANS} spans")
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _apply_spans(text: str, spans: list[tuple[int, int]]) -> str:
    out, cursor = [], 0
    for start, end in spans:
        out += [text[cursor:start], MARKER]
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


async def _record(
    session: AsyncSession,
    *,
    clue_id: str,
    target: str,
    target_id: str,
    field: str,
    version: int,
    action: str,
    marks: dict[str, Any],
    reason: str,
    actor: str,
    keys: KeyRing,
    text: str | None = None,
    stored: files.Covered | None = None,
    blob: tuple[str, bytes, int, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Redaction:
    row = Redaction(
        id=new_id(),
        clue_id=clue_id,
        target=target,
        target_id=target_id,
        field=field,
        version=version,
        action=action,
        created_by=actor,
        created_at=utcnow(),
    )
    seal = await _sealer(session, clue_id, keys)
    row.marks = seal(json.dumps(marks).encode("utf-8"), _binding(row.id, "marks"))
    row.reason = seal(reason.encode("utf-8"), _binding(row.id, "reason"))
    if text is not None:
        row.content = seal(
            json.dumps({"text": text}, ensure_ascii=False).encode("utf-8"), _binding(row.id, "content")
        )
    if stored is not None and blob is not None:
        row.blob_id, row.wrapped_key, row.size, row.sha256 = blob
        row.kind = stored.kind
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # the same version made at the same moment by someone else (unique index)
        raise Conflict(
            "刚有人生成了同一内容的新版本，请刷新后在最新版本上重新标注",
            message_en="someone made this version at the same moment; reload and mark the latest version",
        ) from None
    await audit_service.record(
        session,
        actor=actor,
        action="clue.unmasked" if action == "unmask" else "clue.redacted",
        object_type="clue",
        object_id=clue_id,
        details={
            "redaction_id": row.id,
            "target": target,
            "target_id": target_id,
            "field": field,
            "version": version,
            "marks": 1 if action == "unmask" else len(next(iter(marks.values()), [])),
            "reason_sha256": _reason_digest(row.reason),  # the row's sealed reason, tied to the chain
            **(extra or {}),
        },
    )
    return row


def _view(
    row: Redaction,
    opener: items.ItemOpener | None,
    *,
    opened: tuple[dict[str, Any], str, str | None] | None = None,
) -> VersionView:
    """A version as staff read it: opened with ``opener``, or from its ``opened`` (marks, reason, text)."""
    if opened is None:
        assert opener is not None
        opened = (
            json.loads(opener.open(row.marks, _binding(row.id, "marks"))),
            opener.open(row.reason, _binding(row.id, "reason")).decode("utf-8"),
            _open_text(row, opener) if row.content is not None else None,
        )
    marks, reason, text = opened
    return VersionView(
        id=row.id,
        clue_id=row.clue_id,
        target=row.target,
        target_id=row.target_id,
        field=row.field,
        version=row.version,
        action=row.action,
        marks=marks,
        reason=reason,
        created_by=row.created_by,
        created_at=row.created_at,
        text=text,
        kind=row.kind,
        size=row.size,
        sha256=row.sha256,
    )


async def redact_text(
    session: AsyncSession,
    *,
    clue_id: str,
    target: str,
    target_id: str | None,
    field: str | None,
    base_version: int,
    spans: Sequence[Sequence[int]],
    quotes: Sequence[str] = (),
    reason: str,
    principal: Principal,
    keys: KeyRing,
) -> VersionView:
    """Cover ``spans`` (offsets into version ``base_version`` of the text) and every occurrence of each of
    ``quotes`` with a marker; the result is the next version. Audited as ``clue.redacted``."""
    clue = await _visible(session, clue_id, principal, Action.redact)
    if target == "message":
        require(principal.roles, Action.exchange_messages)
    reason = _reason(reason)
    text_target = _normalise_target(target, target_id, field, clue.id)
    opener = await _opener(session, clue.id, keys, principal.unlocked)
    version, text = await _current(session, clue, text_target, opener, principal.unlocked)
    _check_base(version, base_version)
    merged = _spans(text, spans, quotes)
    row = await _record(
        session,
        clue_id=clue.id,
        target=text_target.kind,
        target_id=text_target.target_id,
        field=text_target.field,
        version=version + 1,
        action="redact",
        marks={"spans": [list(s) for s in merged]},
        reason=reason,
        actor=principal.actor,
        keys=keys,
        text=_apply_spans(text, merged),
    )
    return _view(row, opener)


async def _file_bytes(store: BlobStore, blob_id: str, wrapped_key: bytes, opener: items.ItemOpener) -> bytes:
    binding = attachment_binding(blob_id)
    try:
        file_key = opener.open(wrapped_key, binding)
        return b"".join([c async for c in decrypt_stream(file_key, binding, store.open_reader(blob_id))])
    except CaseKeyAbsent:
        raise
    except (EnvelopeError, StreamError, BlobStoreError):
        raise attachments_service.AttachmentUnavailable() from None


async def redact_file(
    session: AsyncSession,
    *,
    attachment_id: str,
    base_version: int,
    regions: Sequence[files.Region],
    reason: str,
    principal: Principal,
    keys: KeyRing,
    store: BlobStore,
) -> VersionView:
    """Cover ``regions`` of version ``base_version`` of a clue's cleaned file (image pixels, PDF page
    points) and store the result as the next version. Audited as ``clue.redacted``."""
    require(principal.roles, Action.download_attachment)
    attachment = await session.get(Attachment, attachment_id[:36])
    if attachment is None:
        raise _not_found()
    try:
        clue = await _visible(session, attachment.clue_id, principal, Action.redact)
    except NotFound:
        raise _not_found() from None
    reason = _reason(reason)
    if attachment.sealed_reason:
        raise attachments_service.AttachmentSealed(attachment.sealed_reason)
    latest = await _latest(session, "attachment", attachment.id, "")
    _check_base(latest.version if latest else 0, base_version)
    source = latest if latest else attachment
    assert source.blob_id is not None and source.wrapped_key is not None and source.kind is not None
    opener = await _opener(session, clue.id, keys, principal.unlocked)
    data = await _file_bytes(store, source.blob_id, source.wrapped_key, opener)
    covered = files.cover(data, source.kind, list(regions))
    record = await encrypt_bytes_into_blob(
        covered.data,
        kind=FileKind(covered.kind),
        store=store,
        wrap_key=await _sealer(session, clue.id, keys),
    )
    row = await _record(
        session,
        clue_id=clue.id,
        target="attachment",
        target_id=attachment.id,
        field="",
        version=(latest.version if latest else 0) + 1,
        action="redact",
        marks={"regions": [vars(r) for r in regions]},
        reason=reason,
        actor=principal.actor,
        keys=keys,
        stored=covered,
        blob=(record.blob_id, record.wrapped_key, record.size, record.sha256),
    )
    return _view(row, opener)


async def list_versions(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing
) -> list[VersionView]:
    """Every redacted and unmasked version of the clue's texts and files, oldest first, with who and why;
    an audited read (``clue.redactions_read``)."""
    clue = await _visible(session, clue_id, principal, Action.redact)
    rows = (
        await session.execute(
            select(Redaction)
            .where(Redaction.clue_id == clue.id)
            .order_by(Redaction.created_at, Redaction.target, Redaction.target_id, Redaction.version)
        )
    ).scalars()
    opener = await _opener(session, clue.id, keys, principal.unlocked)
    views = [_view(r, opener) for r in rows]
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.redactions_read",
        object_type="clue",
        object_id=clue.id,
        details={"redaction_ids": [v.id for v in views]},
    )
    return views


# --- What goes onward ----------------------------------------------------------------------------


async def latest_texts(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing
) -> dict[TextTarget, str]:
    """The latest version of each of the clue's texts that has one, opened with the requester's key (the
    caller checked visibility and audits its own read of the rest)."""
    opener = await _opener(session, clue_id, keys, principal.unlocked)
    rows = (
        await session.execute(
            select(Redaction)
            .where(Redaction.clue_id == clue_id, Redaction.target.in_(TEXT_TARGETS))
            .order_by(Redaction.version)
        )
    ).scalars()
    return {TextTarget(r.target, r.target_id, r.field): _open_text(r, opener) for r in rows}


@dataclass(frozen=True)
class AdditionText:
    """An addition as it goes onward, before redaction: its text fields named in ADDITION_FIELDS (masked at
    intake), and for a caller's confirmation whether they confirmed the operator's record."""

    id: str
    kind: str
    created_at: datetime
    fields: dict[str, str]
    confirmed: bool | None


async def addition_texts(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing
) -> list[AdditionText]:
    """The clue's additions that go onward (the kinds in ADDITION_FIELDS), oldest first, opened with the
    requester's key (the caller checked visibility); audited as ``clue.additions_read``."""
    rows = list(
        (
            await session.execute(
                select(ClueAddition)
                .where(ClueAddition.clue_id == clue_id, ClueAddition.kind.in_(ADDITION_FIELDS))
                .order_by(ClueAddition.created_at, ClueAddition.id)
            )
        ).scalars()
    )
    if not rows:
        return []
    opener = await _opener(session, clue_id, keys, principal.unlocked)
    shown = []
    for row in rows:
        content = json.loads(opener.open(row.content, f"clue_additions/{row.id}/content"))
        fields = {
            f: content[f] for f in ADDITION_FIELDS[row.kind] if isinstance(content.get(f), str) and content[f]
        }
        confirmed = content.get("confirmed") if row.kind == "caller_confirmation" else None
        shown.append(AdditionText(row.id, row.kind, row.created_at, fields, confirmed))
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.additions_read",
        object_type="clue",
        object_id=clue_id,
        details={"addition_ids": [a.id for a in shown]},
    )
    return shown


async def open_shown_file(
    session: AsyncSession, *, attachment_id: str, principal: Principal, keys: KeyRing, store: BlobStore
) -> attachments_service.Download:
    """The file as it goes onward: its latest redacted version if it has one (audited as
    ``attachment.redacted_downloaded``), else the cleaned file (``attachments_service.open_download``)."""
    latest = await _latest(session, "attachment", attachment_id[:36], "")
    if latest is None:
        return await attachments_service.open_download(
            session, attachment_id=attachment_id, principal=principal, keys=keys, store=store
        )
    require(principal.roles, Action.download_attachment)
    try:
        await registry_service.get_visible_clue(session, clue_id=latest.clue_id, principal=principal)
    except NotFound:
        raise _not_found() from None
    return await _version_download(session, latest, principal, keys, store)


async def _version_download(
    session: AsyncSession, row: Redaction, principal: Principal, keys: KeyRing, store: BlobStore
) -> attachments_service.Download:
    assert row.blob_id is not None and row.wrapped_key is not None and row.kind is not None
    await audit_service.record(
        session,
        actor=principal.actor,
        action="attachment.redacted_downloaded",
        object_type="clue",
        object_id=row.clue_id,
        details={"attachment_id": row.target_id, "redaction_id": row.id, "version": row.version},
    )
    opener = await _opener(session, row.clue_id, keys, principal.unlocked)
    data = await _file_bytes(store, row.blob_id, row.wrapped_key, opener)

    async def chunks():  # type: ignore[no-untyped-def]
        yield data

    return attachments_service.Download(
        attachment_id=row.target_id,
        media_type=row.kind,
        size=len(data),
        filename=attachments_service.download_name(f"{row.target_id}-v{row.version}", row.kind),
        chunks=chunks(),
    )


async def open_version_file(
    session: AsyncSession, *, redaction_id: str, principal: Principal, keys: KeyRing, store: BlobStore
) -> attachments_service.Download:
    """One redacted version's file (any version, for comparing), audited."""
    row = await session.get(Redaction, redaction_id[:36])
    if row is None or row.blob_id is None:
        raise _not_found()
    require(principal.roles, Action.download_attachment)
    try:
        await _visible(session, row.clue_id, principal, Action.redact)
    except NotFound:
        raise _not_found() from None
    return await _version_download(session, row, principal, keys, store)


# --- Correcting automatic masking ------------------------------------------------------------------------


@dataclass(frozen=True)
class UnmaskView:
    id: str
    clue_id: str
    target: str
    target_id: str
    field: str
    base_version: int
    start: int
    end: int
    reason: str
    status: str
    requested_by: str
    requested_at: datetime
    redaction_id: str | None


def _unmask_binding(request_id: str) -> str:
    return f"unmask_requests/{request_id}/reason"


def _context_binding(request_id: str) -> str:
    return f"unmask_requests/{request_id}/context"


def _unmask_view(row: UnmaskRequest, opener: items.ItemOpener) -> UnmaskView:
    return UnmaskView(
        id=row.id,
        clue_id=row.clue_id,
        target=row.target,
        target_id=row.target_id,
        field=row.field,
        base_version=row.base_version,
        start=row.start,
        end=row.end,
        reason=opener.open(row.reason, _unmask_binding(row.id)).decode("utf-8"),
        status=row.status,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        redaction_id=row.redaction_id,
    )


async def request_unmask(
    session: AsyncSession,
    *,
    clue_id: str,
    target: str,
    target_id: str | None,
    field: str | None,
    base_version: int,
    start: int,
    end: int,
    reason: str,
    principal: Principal,
    keys: KeyRing,
) -> UnmaskView:
    """A supervisor asks to show what one automatic-masking marker (``［姓名］``…) at ``start``–``end`` of
    version ``base_version`` hides, e.g. an accused's name masked as if it were the reporter's. Nothing is
    revealed here: the staff server cannot open the identity key. Audited as ``clue.unmask_requested``."""
    clue = await _visible(session, clue_id, principal, Action.request_unmask)
    reason = _reason(reason)
    text_target = _normalise_target(target, target_id, field, clue.id)
    if text_target.kind == "accused":  # intake does not mask the accused person's details: nothing to show
        raise Invalid(
            "被反映人信息未经自动遮盖，无需取消",
            message_en="the accused details are not masked automatically",
        )
    opener = await _opener(session, clue.id, keys, principal.unlocked)
    version, text = await _current(session, clue, text_target, opener, principal.unlocked)
    _check_base(version, base_version)
    marker = text[start:end] if 0 <= start < end <= len(text) else ""
    if marker not in MASK_MARKERS.values():
        raise Invalid(
            "所选位置不是一处自动遮盖标记（如［姓名］）",
            message_en="start and end must cover exactly one automatic masking marker (e.g. ［姓名］)",
        )
    row = UnmaskRequest(
        id=new_id(),
        clue_id=clue.id,
        target=text_target.kind,
        target_id=text_target.target_id,
        field=text_target.field,
        base_version=base_version,
        start=start,
        end=end,
        status="pending",
        requested_by=principal.actor,
        requested_at=utcnow(),
    )
    row.reason = (await _sealer(session, clue.id, keys))(reason.encode("utf-8"), _unmask_binding(row.id))
    # What the custodians' step needs besides the original, opened here by someone holding the clue's key
    # and sealed to the identity key: the custodians open it with the key they rebuild from their shares,
    # so the custodial command line needs no personal key and the staff server still opens none of it.
    context = {
        "text": text,
        "masked": await _original_text(session, clue, text_target, opener, principal.unlocked),
        "marks": await _version_marks(session, text_target, base_version, opener),
        "names": [(await _clue_field(session, clue, "accused", keys, principal.unlocked)).get("name") or ""]
        if text_target.kind == "report"
        else [],
        "reason": reason,
    }
    row.context = keys.seal_identity(
        json.dumps(context, ensure_ascii=False).encode("utf-8"), _context_binding(row.id)
    )
    session.add(row)
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.unmask_requested",
        object_type="clue",
        object_id=clue.id,
        details={
            "request_id": row.id,
            "target": row.target,
            "target_id": row.target_id,
            "field": row.field,
            "version": base_version,
            "marker": marker,
            "reason_sha256": _reason_digest(row.reason),
        },
    )
    return _unmask_view(row, opener)


async def list_unmask_requests(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing
) -> list[UnmaskView]:
    clue = await _visible(session, clue_id, principal, Action.redact)
    rows = (
        await session.execute(
            select(UnmaskRequest)
            .where(UnmaskRequest.clue_id == clue.id)
            .order_by(UnmaskRequest.requested_at, UnmaskRequest.id)
        )
    ).scalars()
    opener = await _opener(session, clue.id, keys, principal.unlocked)
    views = [_unmask_view(r, opener) for r in rows]
    await audit_service.record(  # the requests' reasons are opened: an audited read, like the versions
        session,
        actor=principal.actor,
        action="clue.unmask_requests_read",
        object_type="clue",
        object_id=clue.id,
        details={"request_ids": [v.id for v in views]},
    )
    return views


def _marker_positions(original: str, spans: list[PersonalDataSpan]) -> tuple[str, list[tuple[int, int, int]]]:
    """The masked text ``mask_personal_data`` makes of ``original`` and where each of its markers stands:
    (start, end, index of the span it hides)."""
    out: list[str] = []
    positions: list[tuple[int, int, int]] = []
    cursor = length = 0
    for index, span in enumerate(spans):  # find_personal_data's spans: sorted, not overlapping
        out.append(original[cursor : span.start])
        length += span.start - cursor
        marker = MASK_MARKERS.get(span.kind, "［个人信息］")
        positions.append((length, length + len(marker), index))
        out.append(marker)
        length += len(marker)
        cursor = span.end
    out.append(original[cursor:])
    return "".join(out), positions


def _shift(
    positions: list[tuple[int, int, int]], changes: list[tuple[int, int, int]]
) -> list[tuple[int, int, int]]:
    """Markers' positions after ``changes`` ((start, end, new length), on the same text, not overlapping):
    a marker a change touches is gone, later ones move."""
    moved = []
    for start, end, index in positions:
        if any(s < end and start < e for s, e, _ in changes):
            continue
        delta = sum(n - (e - s) for s, e, n in changes if e <= start)
        moved.append((start + delta, end + delta, index))
    return moved


async def _version_marks(
    session: AsyncSession, target: TextTarget, upto: int, opener: items.ItemOpener
) -> list[tuple[str, dict[str, Any]]]:
    """Each version's action and marks up to ``upto``, in order."""
    rows = (
        await session.execute(
            select(Redaction)
            .where(
                Redaction.target == target.kind,
                Redaction.target_id == target.target_id,
                Redaction.field == target.field,
                Redaction.version <= upto,
            )
            .order_by(Redaction.version)
        )
    ).scalars()
    return [(row.action, json.loads(opener.open(row.marks, _binding(row.id, "marks")))) for row in rows]


def _replay(
    positions: list[tuple[int, int, int]], versions: Sequence[Sequence[Any]]
) -> list[tuple[int, int, int]]:
    """Follow the markers through the versions (``_version_marks``): redactions cover, unmasks reveal."""
    for action, marks in versions:
        if action == "unmask":
            start, end, length = marks["unmasked"]
            positions = _shift(positions, [(start, end, length)])
        else:
            positions = _shift(positions, [(s, e, len(MARKER)) for s, e in marks["spans"]])
    return positions


async def _sealed_original(session: AsyncSession, clue: Clue, target: TextTarget) -> tuple[bytes, str, str]:
    """The identity-key envelope holding the text as the reporter wrote it, its binding, and the key of
    the text in it. Only this one text is read from it, never the submitter's details."""
    sealed: bytes | None = None
    if target.kind == "report":
        sealed, binding, key = clue.identity, f"clues/{clue.id}/identity", "unmasked_text"
    elif target.kind == "message":
        message = await session.get(Message, target.target_id)
        sealed, binding, key = (
            message.identity if message else None,
            messages_service.identity_binding(target.target_id),
            "text",
        )
    else:
        addition = await session.get(ClueAddition, target.target_id)
        sealed, binding, key = (
            addition.identity if addition else None,
            f"clue_additions/{target.target_id}/identity",
            target.field,
        )
    if sealed is None:
        raise Conflict("此处没有被自动遮盖的原文", message_en="nothing of this text was masked")
    return sealed, binding, key


async def apply_unmask(
    session: AsyncSession,
    *,
    request_id: str,
    custodian: str,
    shares: list[custody_service.ShareInput],
    keys: KeyRing,
) -> VersionView:
    """Show the one span a pending unmask request names: the identity key is rebuilt from custodians' shares
    in memory (``custody_service.identity_opener``: two custodians at least, none recused), the text as
    the reporter wrote it is opened, the masking is replayed to find the span behind the marker, and the
    next version shows that span's words and nothing else. ``custodian`` runs it (an active custodian,
    not the requester). Audited as ``clue.unmasked`` with the share holders."""
    row = await session.get(UnmaskRequest, request_id[:36], with_for_update=True)
    if row is None:
        raise NotFound("去遮盖申请不存在", message_en="unmask request not found")
    if row.status != "pending":
        raise Conflict("申请已处理", message_en=f"the request is already {row.status}")
    staff, roles = await custody_service.active_staff(session, custodian)
    if Role.custodian not in roles:
        raise Forbidden("只有身份保管人可以执行", message_en="only a custodian may apply an unmask")
    if audit_service.staff_actor(staff.id) == row.requested_by:
        raise Forbidden("申请人不能执行自己的申请", message_en="the requester cannot apply their own request")
    clue = await session.get(Clue, row.clue_id)
    assert clue is not None
    target = TextTarget(row.target, row.target_id, row.field)
    latest = await _latest(session, target.kind, target.target_id, target.field)
    version = latest.version if latest else 0
    if version != row.base_version:
        raise Conflict(
            "申请之后内容已有新版本，请重新申请", message_en="the text changed since the request; ask again"
        )
    if row.context is None:  # asked before revision 0035 kept what this step needs: nothing to map with
        raise Conflict(
            "此申请提出时未保存去遮盖所需的内容，请重新申请",
            message_en="this request predates what the custodians' step needs; ask again",
        )
    sealed, binding, key = await _sealed_original(session, clue, target)
    opener, holders = await custody_service.identity_opener(
        session, clue=clue, envelope=Envelope.from_bytes(sealed), shares=shares, keys=keys
    )
    original = json.loads(opener.open(sealed, binding)).get(key)
    context = json.loads(opener.open(row.context, _context_binding(row.id)))
    del opener
    # As intake masked it (the report with the accused's name kept readable), then through the versions.
    spans = find_personal_data(original, context["names"]) if isinstance(original, str) else []
    rebuilt, positions = _marker_positions(original or "", spans)
    if not spans or rebuilt != context["masked"]:  # the masking rules changed since: no safe way to map
        raise Conflict(
            "无法对应到原文中的位置（遮盖规则已变化），未显示任何内容",
            message_en="the marker cannot be mapped to the original (masking rules changed); nothing shown",
        )
    here = _replay(positions, context["marks"])
    index = next((i for s, e, i in here if (s, e) == (row.start, row.end)), None)
    if index is None:
        raise Conflict("该标记已不在文本中", message_en="the marker is no longer in the text")
    value = original[spans[index].start : spans[index].end]
    text = context["text"]
    marks = {"unmasked": [row.start, row.end, len(value)]}
    shown = text[: row.start] + value + text[row.end :]
    version_row = await _record(
        session,
        clue_id=clue.id,
        target=target.kind,
        target_id=target.target_id,
        field=target.field,
        version=version + 1,
        action="unmask",
        marks=marks,
        reason=context["reason"],
        actor=audit_service.staff_actor(staff.id),
        keys=keys,
        text=shown,
        extra={"request_id": row.id, "requested_by": row.requested_by, "share_holders": sorted(holders)},
    )
    row.status, row.redaction_id = "applied", version_row.id
    await session.flush()
    # Built from what is in hand: the version is sealed to the clue's key, which custodians need not hold.
    return _view(version_row, None, opened=(marks, context["reason"], shown))
