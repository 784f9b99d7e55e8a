"""Opening what identifies a reporter: two people for the identity, one custodian for contact fields.

The permission checks here (roles, two different people, recusal) are the first line. The second is
cryptographic: the identity private key exists only as k-of-n Shamir shares encrypted to custodians'
passphrases (``service.custody.ceremony``), so ``release_identity`` can only decrypt when at least k
custodians type their passphrases; someone with the whole database, every file and every server cannot.

Every request, approval, refusal, release and contact release is an audit entry in the same transaction.
Audit details carry ids and key ids only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.auth import service as auth_service
from service.auth.models import Staff, StaffRole
from service.auth.permissions import Role
from service.compartments import items as clue_items
from service.compartments import rotation
from service.custody import shamir
from service.custody.ceremony import wipe
from service.custody.models import ClueContact, CustodyRequest
from service.custody.shares import CustodyFileError, read_custody_file
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import (
    KeyFileError,
    KeyRing,
    key_pair_from_private_bytes,
    key_suite,
)
from service.platform.errors import Conflict, Forbidden, Invalid, NotFound
from service.platform.timeutil import utcnow
from service.registry import keyholders
from service.registry.models import Clue, ClueTransfer
from service.registry.service import enforce_recusal

CONTACT_FIELDS = ("phone", "email", "address")
# The identity fields a dossier release may name, with the labels the dossier shows them under.
IDENTITY_FIELDS = {
    "name": "举报人姓名",
    "phone": "联系电话",
    "callback_number": "回拨号码",
    "email": "电子邮箱",
    "id_number": "身份证号",
    "address": "通讯地址",
}
DEFAULT_WINDOW = timedelta(hours=1)


def contact_binding(clue_id: str) -> str:
    return f"clue_contacts/{clue_id}/sealed"


def seal_contact(keys: KeyRing, *, clue_id: str, submitter: dict[str, Any]) -> bytes | None:
    """Intake's half: the contact fields of a real-name reporter, sealed to the contact key (or None)."""
    contact = {k: submitter[k] for k in CONTACT_FIELDS if submitter.get(k)}
    if not contact:
        return None
    return keys.seal_contact(json.dumps(contact, ensure_ascii=False).encode(), contact_binding(clue_id))


async def active_staff(session: AsyncSession, name_or_id: str) -> tuple[Staff, set[str]]:
    """A staff member by name or id, refused if disabled, with their roles."""
    staff = await auth_service.find_staff(session, name_or_id)
    if staff.disabled:
        raise Forbidden("账号已停用", message_en="the account is disabled")
    roles = set(
        (await session.execute(select(StaffRole.role).where(StaffRole.staff_id == staff.id))).scalars()
    )
    return staff, roles


async def _clue(session: AsyncSession, clue_id: str) -> Clue:
    clue = await session.get(Clue, clue_id)
    if clue is None:
        raise NotFound("线索不存在", message_en="clue not found")
    return clue


async def _recuse(
    session: AsyncSession, clue: Clue, staff: Staff, keys: KeyRing, words_key: bytes | None
) -> None:
    """Nobody in the accused person's unit (or a part of it) may request, approve or receive: the check of
    assignment (``registry.service.enforce_recusal``), the reporter's words asked through the keyed digests
    intake stored (``words_key``: ``lookup_key(recusal.WORDS_KEY_LABEL)``). Words that come close to the
    person's unit without naming it refuse too: nobody here confirms a near match."""
    try:
        await enforce_recusal(
            session, clue=clue, assignee_unit_id=staff.unit_id, keys=keys, words_key=words_key
        )
    except EnvelopeError:
        if words_key is not None:
            raise
        # A step that holds no lookup key (the share holders of a release, checked again at receipt) on a
        # clue whose words open only with the case key: the unit resolved at intake was checked before.
    except Conflict:
        raise Conflict(
            "回避：被举报人所在单位的人员不能申请、批准或接收身份信息",
            message_en="recusal: staff of the accused person's unit cannot request, approve or receive",
        ) from None


def _dossier_fields(fields: Sequence[str]) -> str:
    names = [f.strip() for value in fields for f in value.split(",") if f.strip()]
    unknown = sorted(set(names) - set(IDENTITY_FIELDS))
    if not names or unknown:
        raise Invalid(
            "请写明要随移交材料提供的身份信息项："
            + "、".join(f"{k}（{v}）" for k, v in IDENTITY_FIELDS.items()),
            message_en=f"name the identity fields to include, of: {', '.join(IDENTITY_FIELDS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
        )
    return ",".join(dict.fromkeys(names))


async def request_release(
    session: AsyncSession,
    *,
    clue_id: str,
    requester: str,
    reason: str,
    kind: str,
    keys: KeyRing,
    words_key: bytes | None,
    transfer_id: str | None = None,
    fields: Sequence[str] = (),
) -> CustodyRequest:
    """A custodian asks; a second person decides (:func:`decide`). ``kind="dossier"`` asks to send the named
    identity ``fields`` with the dossier of the hand-off ``transfer_id`` (and nothing else is opened)."""
    if kind not in ("identity", "dossier", "contact"):
        raise Invalid("申请类型无效", message_en="kind must be identity, dossier or contact")
    if len(reason.strip()) < 4:
        raise Invalid("请说明理由", message_en="a reason is required")
    staff, roles = await active_staff(session, requester)
    if Role.custodian not in roles:
        raise Forbidden("只有身份保管人可以申请", message_en="only a custodian may request a release")
    clue = await _clue(session, clue_id)
    if kind in ("identity", "dossier") and clue.identity is None:
        raise Invalid("该线索没有举报人身份信息", message_en="this clue holds no identity")
    if kind != "dossier" and (fields or transfer_id):
        raise Invalid(
            "只有随移交材料提供身份信息的申请才写明移交记录和信息项",
            message_en="a hand-off and fields are named only when including identity in a dossier",
        )
    named = None
    if kind == "dossier":
        named = _dossier_fields(fields)
        transfer = await session.get(ClueTransfer, (transfer_id or "")[:36])
        if transfer is None or transfer.clue_id != clue.id:
            raise Invalid(
                "请写明此线索的哪一次移交（移交记录编号）",
                message_en="name one of this clue's hand-offs (its transfer id)",
            )
    await _recuse(session, clue, staff, keys, words_key)
    row = CustodyRequest(
        clue_id=clue.id,
        kind=kind,
        status="pending",
        requester_id=staff.id,
        reason=b"",
        created_at=utcnow(),
        transfer_id=transfer_id if kind == "dossier" else None,
        fields=named,
    )
    session.add(row)
    await session.flush()
    seal = await clue_items.sealer(session, clue_id=clue.id, keys=keys)
    row.reason = seal(reason.encode("utf-8"), reason_binding(row.id))
    await audit_service.record(
        session,
        actor=audit_service.staff_actor(staff.id),
        action="custody.requested",
        object_type="clue",
        object_id=clue.id,
        details={"request_id": row.id, "kind": kind, **_purpose(row)},
    )
    return row


def reason_binding(request_id: str) -> str:
    return f"custody_requests/{request_id}/reason"


def _purpose(row: CustodyRequest) -> dict[str, Any]:
    """What a dossier release decides, for its audit entries: the hand-off and the field names."""
    if row.kind != "dossier":
        return {}
    return {"transfer_id": row.transfer_id, "fields": (row.fields or "").split(",")}


async def _request(session: AsyncSession, request_id: str) -> CustodyRequest:
    row = await session.get(CustodyRequest, request_id, with_for_update=True)
    if row is None:
        raise NotFound("申请不存在", message_en="release request not found")
    return row


async def decide(
    session: AsyncSession,
    *,
    request_id: str,
    approver: str,
    approve: bool,
    keys: KeyRing,
    words_key: bytes | None,
    window: timedelta = DEFAULT_WINDOW,
) -> CustodyRequest:
    """A second person, custodian or supervisor, approves or refuses. The approval is good for ``window``."""
    row = await _request(session, request_id)
    if row.status != "pending":
        raise Conflict("申请已处理", message_en=f"the request is already {row.status}")
    staff, roles = await active_staff(session, approver)
    if staff.id == row.requester_id:
        raise Forbidden(
            "申请人不能批准自己的申请", message_en="the requester cannot approve their own request"
        )
    if not roles & {Role.custodian, Role.supervisor}:
        raise Forbidden(
            "只有保管人或督办领导可以批准", message_en="only a custodian or supervisor may decide"
        )
    await _recuse(session, await _clue(session, row.clue_id), staff, keys, words_key)
    now = utcnow()
    row.status, row.decided_by, row.decided_at = ("approved" if approve else "refused"), staff.id, now
    row.expires_at = now + window if approve else None
    await session.flush()
    await audit_service.record(
        session,
        actor=audit_service.staff_actor(staff.id),
        action="custody.approved" if approve else "custody.refused",
        object_type="clue",
        object_id=row.clue_id,
        details={
            "request_id": row.id,
            "kind": row.kind,
            "window_seconds": int(window.total_seconds()),
            **_purpose(row),
        },
    )
    return row


@dataclass(frozen=True)
class ShareInput:
    path: Path
    passphrase: str


async def _usable(
    session: AsyncSession, row: CustodyRequest, receiver: str, kind: str, keys: KeyRing
) -> Staff:
    if row.kind != kind:
        raise Invalid("申请类型不符", message_en=f"this is a {row.kind} request")
    if row.status != "approved":
        raise Conflict("申请未获批准或已使用", message_en=f"the request is {row.status}, not approved")
    if row.expires_at is not None and utcnow() >= row.expires_at:
        row.status = "expired"
        await session.flush()
        raise Conflict("批准已过期", message_en="the approval has expired")
    staff, _ = await active_staff(session, receiver)
    if staff.id != row.requester_id:
        raise Forbidden("只有申请人可以接收", message_en="only the requester may receive the release")
    await _recuse(session, await _clue(session, row.clue_id), staff, keys, None)
    return staff


@dataclass(frozen=True)
class SealedOriginal:
    """A reporter-written text sealed with the identity key after the report itself (a follow-up message,
    a caller's addition): released with the clue's identity, under ``later_originals[label]``."""

    label: str
    sealed: bytes
    binding: str


async def identity_opener(
    session: AsyncSession, *, clue: Clue, envelope: Envelope, shares: list[ShareInput], keys: KeyRing
) -> tuple[KeyRing, list[str]]:
    """Rebuild the identity private key ``envelope`` is sealed to from at least two active custodians'
    shares (none of them recused from ``clue``), in memory; returns a key ring that opens it and the share
    holders' ids. The combined secret is wiped; the caller drops the ring once it has opened what it needs
    (an identity release, an unmask: ``service.redaction``)."""
    pieces: list[shamir.Share] = []
    holders: list[str] = []
    secret = bytearray()
    threshold = 2
    key_id = envelope.key_id
    try:
        for item in shares:
            opened = read_custody_file(item.path, item.passphrase)
            if opened.kind != "identity-share" or opened.key_id != key_id:
                raise Invalid(
                    "份额不属于此身份密钥",
                    message_en="a share does not belong to the key this identity is sealed to",
                )
            holder, holder_roles = await active_staff(session, opened.holder)
            if Role.custodian not in holder_roles:
                raise Forbidden(
                    "份额持有人不是在岗保管人", message_en="a share's holder is not an active custodian"
                )
            await _recuse(session, clue, holder, keys, None)
            if holder.id in holders:
                raise Invalid("同一保管人的份额只能用一次", message_en="each custodian's share counts once")
            holders.append(holder.id)
            pieces.append(shamir.Share(opened.x, opened.secret))
            threshold = opened.threshold
        if len(pieces) < max(threshold, 2):
            raise Invalid("份额不足", message_en=f"{threshold} custodians' shares are needed")
        secret = bytearray(shamir.combine(pieces))
        try:
            pair = key_pair_from_private_bytes("identity", key_suite(envelope.suite), bytes(secret))
        except (KeyFileError, ValueError):
            pair = None
        if pair is None or pair.public.key_id != key_id:
            raise Invalid("份额无法重建身份密钥", message_en="the shares do not rebuild the identity key")
        return keys.with_private([pair]), holders
    except (CustodyFileError, shamir.ShamirError) as exc:
        raise Invalid("份额无法打开（口令错误或文件损坏）", message_en=str(exc)) from None
    finally:
        wipe(secret)


async def release_identity(
    session: AsyncSession,
    *,
    request_id: str,
    receiver: str,
    shares: list[ShareInput],
    keys: KeyRing,
    later: Sequence[SealedOriginal] = (),
) -> dict[str, Any]:
    """Rebuild the identity private key from custodians' shares, in memory, open one clue's identity, and
    forget the key. Returns the identity fields (and the unmasked text, if the reporter wrote personal
    data), with the originals of ``later`` texts sealed to the same key (None for one sealed to another)."""
    row = await _request(session, request_id)
    staff = await _usable(session, row, receiver, "identity", keys)
    clue = await _clue(session, row.clue_id)
    assert clue.identity is not None
    envelope = Envelope.from_bytes(clue.identity)
    opener, holders = await identity_opener(session, clue=clue, envelope=envelope, shares=shares, keys=keys)
    identity = json.loads(opener.open(clue.identity, f"clues/{clue.id}/identity"))
    if later:
        identity["later_originals"] = {
            item.label: json.loads(opener.open(item.sealed, item.binding))
            if Envelope.from_bytes(item.sealed).key_id == envelope.key_id
            else None
            for item in later
        }
    del opener
    # Which later reporter texts were opened with it (labels only: message or addition ids).
    await _released(
        session, row, staff, envelope, holders, {"later_originals": [item.label for item in later]}
    )
    return identity


async def _released(
    session: AsyncSession,
    row: CustodyRequest,
    staff: Staff,
    envelope: Envelope,
    holders: list[str],
    details: dict[str, Any],
) -> None:
    """Mark a request released and audit it as ``custody.released`` (who held the shares, which key)."""
    row.status, row.released_at = "released", utcnow()
    await session.flush()
    await audit_service.record(
        session,
        actor=audit_service.staff_actor(staff.id),
        action="custody.released",
        object_type="clue",
        object_id=row.clue_id,
        details={
            "request_id": row.id,
            "key_id": envelope.key_id,
            "share_holders": sorted(holders),
            **details,
        },
    )


@dataclass(frozen=True)
class DossierRelease:
    """The identity fields a completed dossier release decided to send, labelled, and the hand-off."""

    release_id: str
    clue_id: str
    transfer_id: str
    fields: tuple[tuple[str, str], ...]


async def release_into_dossier(
    session: AsyncSession, *, request_id: str, receiver: str, shares: list[ShareInput], keys: KeyRing
) -> DossierRelease:
    """Open an approved ``dossier`` request's identity fields (the named ones only) with custodians' shares,
    as :func:`release_identity` opens the identity, for the dossier of the named hand-off
    (``handoff.service.export_released_dossier`` writes it in the same transaction: a failed export undoes
    the release). Audited as ``custody.released`` with the hand-off and the field names."""
    row = await _request(session, request_id)
    staff = await _usable(session, row, receiver, "dossier", keys)
    if row.transfer_id is None:  # the hand-off's record was removed since the decision
        raise Conflict("申请所指的移交记录已不存在", message_en="the hand-off this request names is gone")
    clue = await _clue(session, row.clue_id)
    assert clue.identity is not None
    envelope = Envelope.from_bytes(clue.identity)
    opener, holders = await identity_opener(session, clue=clue, envelope=envelope, shares=shares, keys=keys)
    identity = json.loads(opener.open(clue.identity, f"clues/{clue.id}/identity"))
    del opener
    names = (row.fields or "").split(",")
    missing = [IDENTITY_FIELDS[n] for n in names if not identity.get(n)]
    if missing:
        raise Invalid(
            f"举报人身份信息中没有：{'、'.join(missing)}；请按实有信息重新申请",
            message_en="the identity holds no value for a field the request names; ask again",
        )
    fields = tuple((IDENTITY_FIELDS[n], str(identity[n])) for n in names)
    del identity
    await _released(session, row, staff, envelope, holders, _purpose(row))
    return DossierRelease(row.id, clue.id, row.transfer_id, fields)


async def release_contact(
    session: AsyncSession,
    *,
    clue_id: str,
    custodian: str,
    reason: str,
    key_file: ShareInput,
    keys: KeyRing,
    words_key: bytes | None,
) -> dict[str, Any]:
    """Statutory feedback: one custodian opens only the contact fields, with their own copy of the contact
    key. Request and release are recorded together."""
    row = await request_release(
        session,
        clue_id=clue_id,
        requester=custodian,
        reason=reason,
        kind="contact",
        keys=keys,
        words_key=words_key,
    )
    contact = await session.get(ClueContact, clue_id)
    if contact is None:
        raise Invalid("该线索没有联系方式", message_en="this clue holds no contact fields")
    try:
        opened = read_custody_file(key_file.path, key_file.passphrase)
    except CustodyFileError as exc:
        raise Invalid("联系密钥无法打开（口令错误或文件损坏）", message_en=str(exc)) from None
    staff, _ = await active_staff(session, custodian)
    if opened.kind != "contact-key" or opened.holder != staff.name:
        raise Forbidden("只能使用本人的联系密钥", message_en="use your own contact key file")
    secret = bytearray(opened.secret)
    try:
        envelope = Envelope.from_bytes(contact.sealed)
        pair = key_pair_from_private_bytes("contact", key_suite(envelope.suite), bytes(secret))
        fields = json.loads(keys.with_private([pair]).open(contact.sealed, contact_binding(clue_id)))
    except (KeyFileError, EnvelopeError) as exc:
        raise Invalid(
            "联系密钥与此线索不符", message_en="this contact key does not open the clue's contact fields"
        ) from exc
    finally:
        wipe(secret)
    row.status, row.decided_by, row.decided_at, row.released_at = "released", staff.id, utcnow(), utcnow()
    await session.flush()
    await audit_service.record(
        session,
        actor=audit_service.staff_actor(staff.id),
        action="custody.contact_released",
        object_type="clue",
        object_id=clue_id,
        details={"request_id": row.id, "key_id": envelope.key_id, "fields": sorted(fields)},
    )
    return {k: fields[k] for k in CONTACT_FIELDS if k in fields}


# What a viewer who does not hold a clue's key sees instead of a request's reason.
SEALED_REASON = ("已加密：您无权阅读此线索", "sealed: you do not hold this clue")


@dataclass(frozen=True)
class RequestView:
    """A request as its decider or a lister sees it: ``reason`` opened with the viewer's own keys, or None
    with ``sealed`` saying why (``SEALED_REASON``: the viewer does not hold the clue's key; or the clue
    predates compartments and this process holds no case key). Both None: no viewer asked for reasons."""

    request: CustodyRequest
    reason: str | None = None
    sealed: tuple[str, str] | None = None


async def list_requests(
    session: AsyncSession, *, keys: KeyRing, viewer: auth_service.Principal | None = None
) -> list[RequestView]:
    """Every request, oldest first. With a ``viewer``, each reason opened with their own (personal and unit)
    keys through the clue's item opener — one they cannot open is listed sealed, not refused — and the
    reasons opened are audited as one read (``custody_requests.read``, request ids only)."""
    rows = list((await session.execute(select(CustodyRequest).order_by(CustodyRequest.created_at))).scalars())
    if viewer is None:
        return [RequestView(row) for row in rows]
    openers: dict[str, clue_items.ItemOpener] = {}
    views = []
    for row in rows:
        if row.clue_id not in openers:
            openers[row.clue_id] = await session.run_sync(
                lambda s, clue_id=row.clue_id: clue_items.item_opener(
                    s, keys, clue_id=clue_id, unlocked=viewer.unlocked
                )
            )
        views.append(_view(row, openers[row.clue_id]))
    opened = [view.request.id for view in views if view.reason is not None]
    if opened:
        await audit_service.record(
            session,
            actor=viewer.actor,
            action="custody_requests.read",
            object_type="custody",
            object_id="custody_requests",
            details={"custody_request_ids": opened},
        )
    return views


def _view(row: CustodyRequest, opener: clue_items.ItemOpener) -> RequestView:
    try:
        reason, predates = opener.open_listed(row.reason, reason_binding(row.id))
    except Forbidden:
        return RequestView(row, sealed=SEALED_REASON)
    if reason is None:
        return RequestView(row, sealed=predates)
    return RequestView(row, reason.decode("utf-8"))


@dataclass(frozen=True)
class UnitRecovery:
    clues: int  # clue keys rewrapped to the receiver
    unit_key_granted: bool
    unit_key_rotated: bool = False  # a rotation due after offboarding was finished with the escrow


async def _no_commit() -> None:
    return None


async def recover_unit(
    session: AsyncSession,
    *,
    unit_id: str,
    receiver: str,
    shares: list[ShareInput],
    actor: str,
    commit: Callable[[], Awaitable[None]] = _no_commit,
) -> UnitRecovery:
    """When a unit's people have left: rebuild the escrow key from custodians' shares, in memory, and give
    the receiver (an active member of the unit) the unit's key and the content keys of the unit's clues
    sealed to the escrow; then forget the escrow key. Recusal holds: clues whose accused unit is the
    receiver's are skipped. A unit key due for rotation (someone who held it left) is replaced with the
    escrow's copy of it, chunk by chunk (``commit`` between chunks, so an interruption resumes)."""
    staff, _ = await active_staff(session, receiver)
    if staff.disabled or staff.unit_id != unit_id:
        raise Invalid(
            "接收人须为该单位在岗人员", message_en="the receiver must be an active member of the unit"
        )
    pieces: list[shamir.Share] = []
    holders: list[str] = []
    key_id, threshold, suite = "", 2, ""
    secret = bytearray()
    try:
        for item in shares:
            opened = read_custody_file(item.path, item.passphrase)
            if opened.kind != "escrow-share" or (key_id and opened.key_id != key_id):
                raise Invalid("份额不属于同一托管密钥", message_en="the shares are not of one escrow key")
            holder, holder_roles = await active_staff(session, opened.holder)
            if Role.custodian not in holder_roles or holder.disabled:
                raise Forbidden(
                    "份额持有人不是在岗保管人", message_en="a share's holder is not an active custodian"
                )
            if holder.id in holders:
                raise Invalid("同一保管人的份额只能用一次", message_en="each custodian's share counts once")
            holders.append(holder.id)
            pieces.append(shamir.Share(opened.x, opened.secret))
            key_id, threshold, suite = opened.key_id, opened.threshold, opened.suite
        if len(pieces) < max(threshold, 2):
            raise Invalid("份额不足", message_en=f"{threshold} custodians' shares are needed")
        secret = bytearray(shamir.combine(pieces))
        try:
            escrow = key_pair_from_private_bytes("escrow", suite, bytes(secret))
        except (KeyFileError, ValueError):
            escrow = None
        if escrow is None or escrow.public.key_id != key_id:
            raise Invalid("份额无法重建托管密钥", message_en="the shares do not rebuild the escrow key")
        accused_units = set(await auth_service.unit_and_ancestors(session, staff.unit_id))
        result = await session.run_sync(
            lambda s: keyholders.recover_unit(
                s, unit_id=unit_id, escrow=escrow, receiver_id=staff.id, recused_units=accused_units
            )
        )
        rotated = await rotation.rotate_unit(
            session,
            unit_id=unit_id,
            pairs={},
            escrow=escrow,
            actor=actor,
            via="escrow",
            commit=commit,
        )
    except (CustodyFileError, shamir.ShamirError) as exc:
        raise Invalid("份额无法打开（口令错误或文件损坏）", message_en=str(exc)) from None
    finally:
        wipe(secret)
    await audit_service.record(
        session,
        actor=actor,
        action="custody.unit_recovered",
        object_type="unit",
        object_id=unit_id,
        details={
            "receiver_id": staff.id,
            "escrow_key_id": key_id,
            "share_holders": sorted(holders),
            "clues": result[0],
            "unit_key_granted": result[1],
        },
    )
    return UnitRecovery(
        clues=result[0], unit_key_granted=result[1], unit_key_rotated=any(r.finished for r in rotated)
    )
