"""Exporting a transferred or sent-on clue as a signed dossier, and recording the receiver's feedback on it.
Services flush; the caller's edge commits.

Invariants:
- Only a clue that has been handed off (移交 to a unit, 移送审查调查, 移交 another organ) is exported, by
  someone who may see it (``registry_service.get_visible_clue``: otherwise 404, existence does not leak).
- The dossier carries no identity data: the texts come from the text source (masked, then redacted), the
  files are the cleaned copies (their latest redacted version where one exists) under generated names (never the uploaded name, never a kept original),
  history rows carry codes and staff names but no free-text reasons. The one way identity can enter is
  ``released_identity``, which only a custody release may pass (see ``export_dossier``).
- Every export is audited (who, which clue, the dossier's hash) in the same transaction as its row.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments import service as attachments_service
from service.audit import checkpoints
from service.audit import service as audit_service
from service.auth.models import Staff, Unit
from service.auth.permissions import Action, require
from service.auth.service import Principal
from service.custody import service as custody_service
from service.handoff import archive
from service.handoff.models import Dossier, DossierFeedback
from service.handoff.pdf import DossierDocument, MessageBlock, render_pdf
from service.handoff.texts import ShownTexts, TextSource, redacted_texts
from service.messages import service as messages_service
from service.messages.models import FROM_REPORTER
from service.platform.blobs import BlobStoreError, new_blob_id
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import CaseKeyAbsent
from service.platform.crypto.stream import StreamError, decrypt_stream, encrypt_stream_sync, generate_file_key
from service.platform.db import new_id
from service.platform.errors import Conflict, Invalid, NotFound
from service.platform.runtime import Runtime
from service.platform.timeutil import LOCAL, as_utc, utcnow
from service.redaction import service as redaction_service
from service.registry import categories as taxonomy_categories
from service.registry import lifecycle, routing, transfer_requests
from service.registry import service as registry_service
from service.registry.ledger import CHANNEL_NAMES, SOURCE_NAMES
from service.registry.lifecycle import DISPOSAL_METHODS, FINDINGS, SEND_ON_KINDS, STATUS_NAMES, get_state
from service.registry.models import Clue, ClueTransfer, ClueTransition, TransferRequest

HANDOFF_KINDS = {"unit": "移交承办单位", **SEND_ON_KINDS}  # a referral of an out-of-scope report is not one
STEP_NAMES = {
    "triage": "分办",
    "refer": "转出",
    "transfer": "移交",
    "accept": "受理核查",
    "dispose": "处置",
    "send_on": "移送",
    "reopen": "重新核查",
    "conclude": "办结",
    "archive": "归档",
    "reassign": "改派",
}
ADDITION_NAMES = {"operator_addition": "来电补充", "caller_confirmation": "来电人核对记录"}
ACCUSED_FIELDS = (
    ("name", "姓名"),
    ("unit", "单位"),
    ("position", "职务"),
    ("rank", "职级"),
    ("region", "地区"),
)
MAX_FEEDBACK_CHARS = 10_000
_DIGEST = re.compile(r"\A[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class ReleasedIdentity:
    """Identity a completed custody release (two people, a recorded reason: ``service.custody``) decided to
    send with a hand-off: the release's id and the labelled values to show. Built only by
    :func:`export_released_dossier` from ``custody_service.release_into_dossier``."""

    release_id: str
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ExportedDossier:
    dossier_id: str
    filename: str
    data: bytes  # the ZIP
    digest: str
    hash_algorithm: str
    registry_number: str


def _local(moment: datetime | None) -> str:
    return as_utc(moment).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if moment else "—"


async def _handoff(session: AsyncSession, clue_id: str) -> ClueTransfer:
    transfer = await session.scalar(
        select(ClueTransfer)
        .where(ClueTransfer.clue_id == clue_id, ClueTransfer.kind.in_(HANDOFF_KINDS))
        .order_by(ClueTransfer.transferred_at.desc(), ClueTransfer.id.desc())
        .limit(1)
    )
    if transfer is None:
        raise Conflict(
            "只有已移交或移送的线索才能导出移交材料",
            message_en="only a transferred or sent-on clue can be exported as a dossier",
        )
    return transfer


async def _names(session: AsyncSession, model: type[Staff] | type[Unit], ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(model.id, model.name).where(model.id.in_(ids)))
    return {row_id: name for row_id, name in rows}


async def _cleaned_files(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Runtime, algorithm: str
) -> tuple[list[tuple[str, bytes]], list[list[str]]]:
    """The clue's files as they go onward: the latest redacted version where one exists, else the cleaned
    file, each read through the audited, verifying download."""
    members, rows = [], []
    listings = await attachments_service.list_attachments(session, clue_id=clue_id, principal=principal)
    for listing in listings:
        download = await redaction_service.open_shown_file(
            session, attachment_id=listing.id, principal=principal, keys=runtime.keys, store=runtime.blobs
        )
        try:
            data = b"".join([chunk async for chunk in download.chunks])
        except (StreamError, BlobStoreError):  # damaged past its first segment: no dossier without it
            raise attachments_service.AttachmentUnavailable() from None
        path = archive.FILES_DIR + download.filename  # generated from the id and the detected type
        members.append((path, data))
        rows.append(
            [
                path,
                download.media_type,
                f"{len(data):,} 字节",
                f"{archive.HASH_NAMES[algorithm]} {archive.digest_of(data, algorithm)}",
                "、".join(listing.removed_metadata) or "无",
            ]
        )
    return members, rows


async def _history(session: AsyncSession, clue_id: str) -> list[list[str]]:
    transitions = list(
        (
            await session.execute(
                select(ClueTransition)
                .where(ClueTransition.clue_id == clue_id)
                .order_by(ClueTransition.at, ClueTransition.id)
            )
        ).scalars()
    )
    staff_ids = {t.actor.removeprefix("staff:") for t in transitions if t.actor.startswith("staff:")}
    staff_ids |= {t.approver_id for t in transitions if t.approver_id}
    names = await _names(session, Staff, staff_ids)
    rows = []
    status = STATUS_NAMES.get
    for t in transitions:
        actor = (
            names.get(t.actor.removeprefix("staff:"), t.actor) if t.actor.startswith("staff:") else t.actor
        )
        rows.append(
            [
                _local(t.at),
                STEP_NAMES.get(t.action, t.action),
                f"{status(t.from_status, t.from_status)} → {status(t.to_status, t.to_status)}",
                actor,
                names.get(t.approver_id, "—") if t.approver_id else "—",
            ]
        )
    return rows


async def _ledger(session: AsyncSession, clue: Clue, transfer: ClueTransfer) -> list[tuple[str, str]]:
    state = await get_state(session, clue.id)
    units = await _names(session, Unit, {u for u in (clue.handling_unit_id, transfer.to_unit_id) if u})
    category_names = taxonomy_categories.category_names()
    method = state.disposal_method
    receiver = (
        units.get(transfer.to_unit_id or "", "") if transfer.kind == "unit" else (transfer.target or "")
    )
    return [
        ("登记编号", clue.registry_number),
        ("线索来源", SOURCE_NAMES.get(clue.source, clue.source)),
        ("受理渠道", CHANNEL_NAMES.get(clue.channel, clue.channel)),
        ("收到时间", _local(clue.received_at)),
        ("登记时间", _local(clue.registered_at)),
        ("问题类别", "、".join(category_names.get(c.category, c.category) for c in clue.categories) or "—"),
        ("实名/匿名", "实名" if clue.real_name else "匿名"),
        ("当前状态", STATUS_NAMES.get(clue.status, clue.status)),
        ("承办单位", units.get(clue.handling_unit_id or "", "—")),
        ("办理期限", _local(clue.due_at)),
        ("处置方式", ({**DISPOSAL_METHODS, **SEND_ON_KINDS}.get(method, method) if method else "—")),
        ("办理结果", FINDINGS.get(state.finding, state.finding) if state.finding else "—"),
        ("移交方式", HANDOFF_KINDS.get(transfer.kind, transfer.kind)),
        ("接收单位/机关", receiver or "—"),
        ("移交文号", transfer.document_number or "—"),
        ("移交时间", _local(transfer.transferred_at)),
        ("反馈期限", _local(transfer.expected_feedback_at)),
    ]


def _document(
    *,
    clue: Clue,
    ledger: list[tuple[str, str]],
    texts: ShownTexts,
    attachments: list[list[str]],
    history: list[list[str]],
    principal: Principal,
    now: datetime,
    released_identity: ReleasedIdentity | None,
) -> DossierDocument:
    messages = [
        MessageBlock(
            f"{'举报人' if m.direction == FROM_REPORTER else '工作人员'}　{_local(m.at)}"
            + (f"　附件 {len(m.attachment_ids)} 个" if m.attachment_ids else ""),
            m.text,
        )
        for m in texts.messages
    ]
    additions = [
        MessageBlock(
            f"{ADDITION_NAMES.get(a.kind, a.kind)}　{_local(a.at)}",
            "\n".join(
                [
                    *(["来电人确认记录无误。"] if a.confirmed else []),
                    *(f"更正：{v}" if f == "correction" else v for f, v in a.fields.items()),
                ]
            )
            or "—",
        )
        for a in texts.additions
    ]
    incident = [
        (label, str(texts.incident[key]))
        for key, label in (("time", "发生时间"), ("place", "发生地点"))
        if texts.incident.get(key)
    ]
    footer = [
        f"导出人：{principal.name}　导出时间：{_local(now)}",
        "本材料不含举报人身份信息。"
        if not released_identity
        else "本材料含经监护人批准披露的身份信息，须严格保密。",
        "完整性校验：tipline dossier verify 本文件所在的 ZIP --trusted-key 登记机关的公钥文件。",
    ]
    return DossierDocument(
        registry_number=clue.registry_number,
        ledger=ledger,
        accused=[(label, str(texts.accused.get(key) or "—")) for key, label in ACCUSED_FIELDS],
        report=texts.report,
        incident=incident,
        messages=messages,
        additions=additions,
        attachments=attachments,
        history=history,
        footer=footer,
        released_identity=released_identity.fields if released_identity else (),
    )


async def export_dossier(
    session: AsyncSession,
    *,
    clue_id: str,
    principal: Principal,
    runtime: Runtime,
    text_source: TextSource = redacted_texts,
    released_identity: ReleasedIdentity | None = None,
    transfer: ClueTransfer | None = None,
) -> ExportedDossier:
    """Build, sign, record, keep and audit the dossier of a handed-off clue (``transfer``: that hand-off;
    default the latest); returns the ZIP, which is also kept encrypted (:func:`kept_dossier`).

    ``text_source`` is where the report and message texts come from: by default the redacted version.
    ``released_identity`` is the one way identity enters (:class:`ReleasedIdentity`): what a completed
    custody release decided to send with the hand-off, passed only by :func:`export_released_dossier`.
    When given, the PDF shows it in a section of its own, the manifest says ``identity_included: true``
    with the release id and the field labels, and so do the dossier row and the audit entry.
    """
    require(principal.roles, Action.export_dossier)
    clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    transfer = transfer or await _handoff(session, clue.id)
    settings = runtime.settings
    algorithm = archive.hash_algorithm_for(settings.crypto_suite)
    texts = await text_source(session, clue_id=clue.id, principal=principal, runtime=runtime)
    files, attachment_rows = await _cleaned_files(
        session, clue_id=clue.id, principal=principal, runtime=runtime, algorithm=algorithm
    )
    now = utcnow()
    document = _document(
        clue=clue,
        ledger=await _ledger(session, clue, transfer),
        texts=texts,
        attachments=attachment_rows,
        history=await _history(session, clue.id),
        principal=principal,
        now=now,
        released_identity=released_identity,
    )
    key = checkpoints.load_or_create_signing_key(settings.effective_keys_dir, settings.crypto_suite)
    manifest_fields: dict[str, Any] = {
        "registry_number": clue.registry_number,
        "clue_id": clue.id,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "exported_by": principal.name,
        "hand_off": {
            "kind": transfer.kind,
            "document_number": transfer.document_number,
            "transferred_at": as_utc(transfer.transferred_at).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        # A hotline caller's later additions and corrections as they go onward (redacted where redacted).
        "additions": [
            {
                "id": a.id,
                "kind": a.kind,
                "recorded_at": as_utc(a.at).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "confirmed": a.confirmed,
                "fields": a.fields,
            }
            for a in texts.additions
        ],
        "identity_included": released_identity is not None,
        "identity_release_id": released_identity.release_id if released_identity else None,
        "identity_fields": [label for label, _ in released_identity.fields] if released_identity else [],
    }

    def build() -> archive.BuiltDossier:  # CPU-bound: typesetting, hashing, signing
        members = [(archive.PDF_NAME, render_pdf(document)), *files]
        return archive.build_zip(
            members=members, manifest_fields=manifest_fields, key=key, suite=settings.crypto_suite
        )

    built = await asyncio.to_thread(build)
    row = Dossier(
        id=new_id(),
        clue_id=clue.id,
        transfer_id=transfer.id,
        digest=built.digest,
        hash_algorithm=built.hash_algorithm,
        key_id=key.key_id,
        file_count=built.file_count,
        size=len(built.data),
        identity_included=released_identity is not None,
        identity_release_id=released_identity.release_id if released_identity else None,
        created_by=principal.actor,
        created_at=now,
    )
    # A dossier with released identity is not kept: whoever may export the clue could download it again
    # (``kept_dossier``); the release's own copy is the one written where the custodians ran it.
    if released_identity is None:
        row.blob_id, row.wrapped_key = await _keep(session, runtime, clue.id, row.id, built.data)
    session.add(row)
    try:
        await session.flush()
    except BaseException:
        if row.blob_id is not None:
            await runtime.blobs.delete(row.blob_id)
        raise
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.dossier_exported",
        object_type="clue",
        object_id=clue.id,
        details={
            "dossier_id": row.id,
            "digest": built.digest,
            "hash_algorithm": built.hash_algorithm,
            "key_id": key.key_id,
            "transfer_id": transfer.id,
            "files": built.file_count,
            "identity_included": row.identity_included,
            "identity_release_id": released_identity.release_id if released_identity else None,
            "blob_id": row.blob_id,  # names the kept ZIP: the orphan sweep leaves it (attachments/orphans.py)
        },
    )
    return ExportedDossier(
        dossier_id=row.id,
        filename=f"dossier-{clue.registry_number}.zip",
        data=built.data,
        digest=built.digest,
        hash_algorithm=built.hash_algorithm,
        registry_number=clue.registry_number,
    )


async def export_released_dossier(
    session: AsyncSession,
    *,
    request_id: str,
    receiver: str,
    shares: list[custody_service.ShareInput],
    principal: Principal,
    runtime: Runtime,
) -> ExportedDossier:
    """The dossier of the hand-off an approved custody request of kind ``dossier`` names, with the identity
    fields it decided: the requester (``receiver``) opens them with custodians' shares
    (``custody_service.release_into_dossier``), and ``principal`` (someone who may export the clue: their
    own key opens its texts) exports the dossier, in one transaction — a refused export undoes the release."""
    release = await custody_service.release_into_dossier(
        session, request_id=request_id, receiver=receiver, shares=shares, keys=runtime.keys
    )
    transfer = await session.get(ClueTransfer, release.transfer_id)
    if transfer is None or transfer.clue_id != release.clue_id or transfer.kind not in HANDOFF_KINDS:
        raise Conflict(
            "申请所指的不是此线索的移交或移送", message_en="the request names no hand-off of this clue"
        )
    return await export_dossier(
        session,
        clue_id=release.clue_id,
        principal=principal,
        runtime=runtime,
        released_identity=ReleasedIdentity(release.release_id, release.fields),
        transfer=transfer,
    )


def _zip_binding(dossier_id: str) -> str:
    return f"dossiers/{dossier_id}/zip"


async def _keep(
    session: AsyncSession, runtime: Runtime, clue_id: str, dossier_id: str, data: bytes
) -> tuple[str, bytes]:
    """The ZIP stream-encrypted into the blob store under a fresh key sealed to the clue's own key (the
    case key for a clue sealed before compartments)."""
    blob_id, file_key, binding = new_blob_id(), generate_file_key(), _zip_binding(dossier_id)
    async with await runtime.blobs.open_writer(blob_id) as writer:
        for chunk in encrypt_stream_sync(file_key, binding, [data]):
            await writer.write(chunk)
        await writer.commit()
    return blob_id, await lifecycle.seal_bytes(session, runtime, clue_id, file_key, binding)


async def kept_dossier(
    session: AsyncSession, *, digest: str, principal: Principal, runtime: Runtime
) -> ExportedDossier:
    """A dossier as it was exported (the same bytes, so the same hash), verified as it is read; audited as
    ``clue.dossier_downloaded``."""
    require(principal.roles, Action.export_dossier)
    row, clue = await _visible_dossier(session, digest=digest, principal=principal)
    if row.identity_included:
        raise Conflict(
            "含身份信息的移交材料不保存副本，不能再次下载",
            message_en="a dossier with released identity is not kept and cannot be downloaded again",
        )
    if row.blob_id is None or row.wrapped_key is None:
        raise Conflict(
            "此移交材料未保存副本，请重新生成", message_en="this dossier was not kept: export it again"
        )
    opener = await lifecycle.item_opener(session, runtime, clue_id=clue.id, principal=principal)
    try:
        file_key = opener.open(row.wrapped_key, _zip_binding(row.id))
        data = b"".join(
            [
                c
                async for c in decrypt_stream(
                    file_key, _zip_binding(row.id), runtime.blobs.open_reader(row.blob_id)
                )
            ]
        )
    except CaseKeyAbsent:
        raise
    except (EnvelopeError, StreamError, BlobStoreError):
        raise attachments_service.AttachmentUnavailable() from None
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.dossier_downloaded",
        object_type="clue",
        object_id=row.clue_id,
        details={"dossier_id": row.id, "digest": row.digest},
    )
    return ExportedDossier(
        dossier_id=row.id,
        filename=f"dossier-{clue.registry_number}.zip",
        data=data,
        digest=row.digest,
        hash_algorithm=row.hash_algorithm,
        registry_number=clue.registry_number,
    )


@dataclass(frozen=True)
class DossierListing:
    id: str
    transfer_id: str | None
    digest: str
    hash_algorithm: str
    created_at: datetime
    kept: bool


async def list_dossiers(session: AsyncSession, *, clue_id: str, principal: Principal) -> list[DossierListing]:
    """A visible clue's dossiers, newest first (hashes and dates only: no content, no audit entry)."""
    require(principal.roles, Action.export_dossier)
    await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = await session.execute(
        select(Dossier).where(Dossier.clue_id == clue_id).order_by(Dossier.created_at.desc(), Dossier.id)
    )
    return [
        DossierListing(r.id, r.transfer_id, r.digest, r.hash_algorithm, r.created_at, r.blob_id is not None)
        for r in rows.scalars()
    ]


# --- A hand-off produces its dossier ----------------------------------------------------------------------


async def _dossiers_for_new_handoffs(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Runtime
) -> None:
    """Each hand-off (移交 to a unit, 移送, 移交 another organ) of the clue without a dossier gets one,
    recorded against it and audited, in the transaction that made the hand-off."""
    done = select(Dossier.transfer_id).where(Dossier.transfer_id.is_not(None))
    pending = (
        await session.execute(
            select(ClueTransfer)
            .where(ClueTransfer.clue_id == clue_id, ClueTransfer.kind.in_(HANDOFF_KINDS))
            .where(ClueTransfer.id.not_in(done))
            .order_by(ClueTransfer.transferred_at, ClueTransfer.id)
        )
    ).scalars()
    for transfer in list(pending):
        await export_dossier(
            session, clue_id=clue_id, principal=principal, runtime=runtime, transfer=transfer
        )


async def apply_transition(
    session: AsyncSession,
    *,
    clue_id: str,
    request: lifecycle.TransitionRequest,
    principal: Principal,
    runtime: Runtime,
) -> ClueTransition:
    """``lifecycle.apply_transition``; a transfer or sending-on also produces its dossier."""
    row = await lifecycle.apply_transition(
        session, clue_id=clue_id, request=request, principal=principal, runtime=runtime
    )
    if request.action in ("transfer", "send_on"):
        await _dossiers_for_new_handoffs(session, clue_id=row.clue_id, principal=principal, runtime=runtime)
    return row


async def decide_transfer_request(
    session: AsyncSession,
    *,
    request_id: str,
    decision: transfer_requests.Decision,
    principal: Principal,
    runtime: Runtime,
) -> TransferRequest:
    """``transfer_requests.decide``; an approved request's transfer also produces its dossier."""
    row = await transfer_requests.decide(
        session, request_id=request_id, decision=decision, principal=principal, runtime=runtime
    )
    if decision.approve:
        await _dossiers_for_new_handoffs(session, clue_id=row.clue_id, principal=principal, runtime=runtime)
    return row


# --- The receiver's feedback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackView:
    id: str
    dossier_id: str
    digest: str
    text: str
    recorded_by: str
    recorded_at: datetime


def _feedback_binding(feedback_id: str) -> str:
    return f"dossier_feedback/{feedback_id}/body"


async def _visible_dossier(
    session: AsyncSession, *, digest: str, principal: Principal
) -> tuple[Dossier, Clue]:
    digest = (digest or "").strip().lower()
    if not _DIGEST.match(digest):
        raise Invalid(
            "移交材料哈希值应为 64 位十六进制数", message_en="the dossier hash must be 64 hex digits"
        )
    dossier = await session.scalar(select(Dossier).where(Dossier.digest == digest))
    if dossier is None:
        raise NotFound("移交材料不存在", message_en="dossier not found")
    try:
        clue = await registry_service.get_visible_clue(session, clue_id=dossier.clue_id, principal=principal)
    except NotFound:
        raise NotFound("移交材料不存在", message_en="dossier not found") from None
    return dossier, clue


async def record_feedback(
    session: AsyncSession, *, digest: str, text: str, principal: Principal, runtime: Runtime
) -> FeedbackView:
    """Record what the receiving organ reported back, against the dossier's hash; sealed and audited. The
    first feedback on a hand-off also marks the transfer's feedback as received (the ledger's fact)."""
    require(principal.roles, Action.record_dossier_feedback)
    text = messages_service.clean_text(text, limit=MAX_FEEDBACK_CHARS, what=("反馈", "feedback"))
    dossier, clue = await _visible_dossier(session, digest=digest, principal=principal)
    row = DossierFeedback(
        id=new_id(), dossier_id=dossier.id, recorded_by=principal.actor, recorded_at=utcnow()
    )
    row.body = await lifecycle.seal_bytes(
        session, runtime, clue.id, text.encode("utf-8"), _feedback_binding(row.id)
    )
    session.add(row)
    await session.flush()
    if dossier.transfer_id is not None:
        transfer = await session.get(ClueTransfer, dossier.transfer_id)
        if transfer is not None and transfer.feedback_at is None:
            await routing.record_transfer_feedback(
                session, clue_id=clue.id, transfer_id=transfer.id, principal=principal
            )
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.dossier_feedback",
        object_type="clue",
        object_id=clue.id,
        details={"dossier_id": dossier.id, "digest": dossier.digest, "feedback_id": row.id},
    )
    return FeedbackView(row.id, dossier.id, dossier.digest, text, row.recorded_by, row.recorded_at)


async def list_feedback(
    session: AsyncSession, *, digest: str, principal: Principal, runtime: Runtime
) -> list[FeedbackView]:
    """The feedback recorded against a dossier, oldest first; an audited read."""
    require(principal.roles, Action.record_dossier_feedback)
    dossier, clue = await _visible_dossier(session, digest=digest, principal=principal)
    rows = (
        await session.execute(
            select(DossierFeedback)
            .where(DossierFeedback.dossier_id == dossier.id)
            .order_by(DossierFeedback.recorded_at, DossierFeedback.id)
        )
    ).scalars()
    opener = await lifecycle.item_opener(session, runtime, clue_id=clue.id, principal=principal)
    views = [
        FeedbackView(
            r.id,
            dossier.id,
            dossier.digest,
            opener.open(r.body, _feedback_binding(r.id)).decode("utf-8"),
            r.recorded_by,
            r.recorded_at,
        )
        for r in rows
    ]
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.dossier_feedback_read",
        object_type="clue",
        object_id=clue.id,
        details={"dossier_id": dossier.id, "feedback_ids": [v.id for v in views]},
    )
    return views
