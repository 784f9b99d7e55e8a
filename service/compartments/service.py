"""The compartment key hierarchy in the database: people's and units' keys, grants, clue wraps.

Synchronous on a ``Session`` (intake registers in one worker-thread call); async callers use
``session.run_sync``. Services flush, never commit. Who should receive a wrap (supervisors, recusal) is the
registry's decision (``service.registry.keyholders``); this module only seals, opens and removes.

Invariants:
- No private key is stored in the clear: a person's under their password (Argon2id) and under each token's
  and session's secret (only the secret's hash is stored); a unit's as grants to members' keys and sealed to
  the escrow key; the escrow's is split among custodians, never in the database.
- A disabled person's wraps and grants are deleted and their key retired: nothing left in the database
  opens anything for them, whatever copy of their password or token survives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from service.compartments import keys as ck
from service.compartments.models import ClueKeyWrap, ClueSealed, CompartmentKey, UnitKeyGrant
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import AnyKeyPair, AnyPublicKey
from service.platform.db import execute_many, new_id
from service.platform.errors import Forbidden
from service.platform.timeutil import utcnow


class Recipient(NamedTuple):
    """A public key a clue's content key is wrapped to, and why (escrow, supervisor, assignee, unit …)."""

    key_id: str
    public: str  # the public key document (JSON)
    reason: str


def _add_key(session: Session, *, kind: str, owner_id: str | None, public: AnyPublicKey) -> CompartmentKey:
    row = CompartmentKey(
        key_id=public.key_id,
        owner_kind=kind,
        owner_id=owner_id,
        suite=public.suite,
        public=ck.public_json(public),
        created_at=utcnow(),
    )
    session.add(row)
    return row


def _active(session: Session, kind: str, owner_id: str | None) -> CompartmentKey | None:
    return session.scalar(
        select(CompartmentKey)
        .where(
            CompartmentKey.owner_kind == kind,
            CompartmentKey.owner_id == owner_id
            if owner_id is not None
            else CompartmentKey.owner_id.is_(None),
            CompartmentKey.retired_at.is_(None),
        )
        .order_by(CompartmentKey.created_at.desc())
        .limit(1)
    )


_KEY_EXISTS = select(CompartmentKey.key_id).where(CompartmentKey.key_id == bindparam("key_id"))


def escrow_key(session: Session, keys: ck.KeySource) -> Recipient | None:
    """The key ring's escrow public key as a recipient (its row made on first use); None where no escrow key
    is set up. Reads only public columns: intake calls it (``custody.db_roles``)."""
    if keys.escrow_public is None:
        return None
    key_id = keys.escrow_public.key_id
    if session.connection().execute(_KEY_EXISTS, {"key_id": key_id}).first() is None:
        _add_key(session, kind="escrow", owner_id=None, public=keys.escrow_public)
        session.flush()
    return Recipient(key_id, ck.public_json(keys.escrow_public), "escrow")


def staff_keys(session: Session, staff_ids: Iterable[str]) -> dict[str, list[CompartmentKey]]:
    """Each person's active keys. Usually one; a password set by someone who did not hold the key adds a
    new one (the old stays with the tokens that carry it)."""
    ids = list(set(staff_ids))
    found: dict[str, list[CompartmentKey]] = {}
    if not ids:
        return found
    rows = session.scalars(
        select(CompartmentKey).where(
            CompartmentKey.owner_kind == "staff",
            CompartmentKey.owner_id.in_(ids),
            CompartmentKey.retired_at.is_(None),
        )
    )
    for row in rows:
        found.setdefault(str(row.owner_id), []).append(row)
    return found


def unit_key(session: Session, unit_id: str) -> CompartmentKey | None:
    return _active(session, "unit", unit_id)


# --- People --------------------------------------------------------------------------------------------


def enrol_staff(session: Session, *, staff_id: str, unit_id: str | None, keys: ck.KeySource) -> AnyKeyPair:
    """A new personal key pair for a staff member (returned: the caller wraps it to a first token or a
    password while it is in memory), and membership of their unit's key."""
    pair = ck.generate("staff", keys.suite)
    _add_key(session, kind="staff", owner_id=staff_id, public=pair.public)
    session.flush()
    if unit_id is not None:
        _join_unit(session, unit_id=unit_id, staff_id=staff_id, member=pair.public, keys=keys)
    return pair


def _join_unit(
    session: Session, *, unit_id: str, staff_id: str, member: AnyPublicKey, keys: ck.KeySource
) -> None:
    """Grant the unit's key to a member. A unit's key is made when its first member joins (the one moment a
    process holds it without anyone's unlock) and sealed to the escrow at once; later members' grants wait
    until someone who holds it unlocks (``unlocked``)."""
    row = unit_key(session, unit_id)
    wrapped = None
    if row is None:
        pair = ck.generate("unit", keys.suite)
        row = _add_key(session, kind="unit", owner_id=unit_id, public=pair.public)
        if keys.escrow_public is not None:
            row.escrow_wrap = ck.seal_private_to(pair, keys.escrow_public, ck.escrow_binding(row.key_id))
        wrapped = ck.seal_private_to(pair, member, ck.grant_binding(row.key_id, member.key_id))
        session.flush()
    session.add(
        UnitKeyGrant(
            unit_key_id=row.key_id,
            staff_key_id=member.key_id,
            staff_id=staff_id,
            wrapped=wrapped,
            created_at=utcnow(),
        )
    )
    session.flush()


def join_unit(session: Session, *, unit_id: str, staff_id: str, keys: ck.KeySource) -> None:
    """A person moved into a unit: each of their active keys is granted the unit's key as a new member's is
    (``_join_unit``: sealed at the next unlock of someone who holds it, or now if the unit had no key)."""
    for row in staff_keys(session, [staff_id]).get(staff_id, []):
        _join_unit(
            session, unit_id=unit_id, staff_id=staff_id, member=ck.public_from_json(row.public), keys=keys
        )


def _staff_key_ids(session: Session, staff_id: str) -> list[str]:
    """Every personal key the person has had (a key reset retires one and makes another)."""
    return list(
        session.scalars(
            select(CompartmentKey.key_id).where(
                CompartmentKey.owner_kind == "staff", CompartmentKey.owner_id == staff_id
            )
        )
    )


def leave_unit(session: Session, *, staff_id: str) -> int:
    """A person moved out of their unit (to another, or to none): their grants of its keys go and every key
    they held is marked for rotation (``compartments.rotation``), exactly as at offboarding — they may keep
    a copy. Their personal key and clue wraps stay (the registry decides which wraps went through the unit:
    ``registry.keyholders.leave_unit``). Returns how many grants went."""
    key_ids = _staff_key_ids(session, staff_id)
    if not key_ids:
        return 0
    _mark_rotation_due(session, key_ids)
    removed = session.execute(delete(UnitKeyGrant).where(UnitKeyGrant.staff_key_id.in_(key_ids)))
    session.flush()
    return int(removed.rowcount or 0)  # type: ignore[attr-defined]


def set_password(
    session: Session,
    *,
    staff_id: str,
    unit_id: str | None,
    password: str,
    personal: AnyKeyPair | None,
    keys: ck.KeySource,
) -> AnyKeyPair:
    """Seal a personal key under a (new) password; any older password wrap goes, so the old password opens
    nothing. Whoever sets it without holding the key (an administrator) gives the person a new key: the
    old one stays with the tokens that carry it, the new one reaches the unit key through a member's next
    unlock and new clue wraps go to both."""
    rows = staff_keys(session, [staff_id]).get(staff_id, [])
    if personal is None or personal.public.key_id not in {row.key_id for row in rows}:
        personal = enrol_staff(session, staff_id=staff_id, unit_id=unit_id, keys=keys)
        rows = staff_keys(session, [staff_id])[staff_id]
    for row in rows:
        if row.key_id == personal.public.key_id:
            row.password_salt, row.password_wrap = ck.seal_under_password(personal, password)
        else:
            row.password_salt, row.password_wrap = None, None
    session.flush()
    return personal


def unlock_with_password(
    session: Session, *, staff_id: str, unit_id: str | None, password: str, keys: ck.KeySource
) -> AnyKeyPair:
    """At login, the password already checked: the personal key it seals. An account whose password was set
    before compartments gets its key now, while the password is in hand."""
    for row in staff_keys(session, [staff_id]).get(staff_id, []):
        if row.password_wrap is not None and row.password_salt is not None:
            public = ck.public_from_json(row.public)
            return ck.open_under_password(public, row.password_salt, row.password_wrap, password)
    return set_password(
        session, staff_id=staff_id, unit_id=unit_id, password=password, personal=None, keys=keys
    )


def unlocked(session: Session, personal: AnyKeyPair) -> ck.Unlocked | None:
    """What a request holds: the person's key and the unit keys granted to it; None if the key was retired
    (disabled, or replaced by a reset). Grants waiting in those units are sealed now, by this holder."""
    mine = session.get(CompartmentKey, personal.public.key_id)
    if mine is None or mine.retired_at is not None:
        return None
    found = session.execute(
        select(UnitKeyGrant, CompartmentKey)
        .join(CompartmentKey, CompartmentKey.key_id == UnitKeyGrant.unit_key_id)
        .where(
            UnitKeyGrant.staff_key_id == personal.public.key_id,
            UnitKeyGrant.wrapped.is_not(None),
            CompartmentKey.retired_at.is_(None),
        )
    ).all()
    units: list[AnyKeyPair] = []
    for grant, key_row in found:
        binding = ck.grant_binding(key_row.key_id, personal.public.key_id)
        units.append(ck.open_private(personal, ck.public_from_json(key_row.public), grant.wrapped, binding))
    if units:
        _seal_waiting_grants(session, units)
    return ck.Unlocked(personal=personal, units=tuple(units))


def _seal_waiting_grants(session: Session, units: list[AnyKeyPair]) -> None:
    by_id = {pair.public.key_id: pair for pair in units}
    waiting = session.execute(
        select(UnitKeyGrant, CompartmentKey)
        .join(CompartmentKey, CompartmentKey.key_id == UnitKeyGrant.staff_key_id)
        .where(UnitKeyGrant.unit_key_id.in_(list(by_id)), UnitKeyGrant.wrapped.is_(None))
    ).all()
    for grant, member in waiting:
        grant.wrapped = ck.seal_private_to(
            by_id[grant.unit_key_id],
            ck.public_from_json(member.public),
            ck.grant_binding(grant.unit_key_id, member.key_id),
        )
    if waiting:
        session.flush()


def revoke_staff(session: Session, *, staff_id: str) -> int:
    """Offboarding (and a key reset): remove every clue wrap and unit grant of the person's keys, drop the
    password wrap and retire the keys; the unit keys they held are marked for rotation. Returns how many
    clue wraps went."""
    key_ids = _staff_key_ids(session, staff_id)
    if not key_ids:
        return 0
    _mark_rotation_due(session, key_ids)
    removed = session.execute(delete(ClueKeyWrap).where(ClueKeyWrap.key_id.in_(key_ids)))
    session.execute(delete(UnitKeyGrant).where(UnitKeyGrant.staff_key_id.in_(key_ids)))
    session.execute(
        update(CompartmentKey)
        .where(CompartmentKey.key_id.in_(key_ids), CompartmentKey.retired_at.is_(None))
        .values(retired_at=utcnow(), password_wrap=None, password_salt=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return int(removed.rowcount or 0)  # type: ignore[attr-defined]


def _mark_rotation_due(session: Session, staff_key_ids: list[str]) -> None:
    """Every unit key these keys were granted (sealed, not waiting) is to be replaced: the person may keep a
    copy of it. A remaining holder does it (``compartments.rotation``)."""
    held = select(UnitKeyGrant.unit_key_id).where(
        UnitKeyGrant.staff_key_id.in_(staff_key_ids), UnitKeyGrant.wrapped.is_not(None)
    )
    session.execute(
        update(CompartmentKey)
        .where(
            CompartmentKey.key_id.in_(held),
            CompartmentKey.retired_at.is_(None),
            CompartmentKey.rotation_due_at.is_(None),
        )
        .values(rotation_due_at=utcnow())
        .execution_options(synchronize_session=False)
    )


# --- Clues ---------------------------------------------------------------------------------------------


_INSERT_SEALED = insert(ClueSealed.__table__)
_INSERT_WRAP = insert(ClueKeyWrap.__table__)


def store_new_clues(
    session: Session,
    *,
    sealed: list[tuple[str, ck.SealedClue]],
    wraps: list[tuple[str, bytes, list[Recipient]]],
) -> None:
    """Intake's registration: the new clues' sealed fields and their content keys' first wraps (clue id,
    content key, recipients), as multi-row Core inserts in the caller's transaction — per-clue ORM flushes
    were most of the registering transaction's time."""
    now = utcnow()
    connection = session.connection()
    execute_many(
        connection,
        _INSERT_SEALED,
        [
            {"clue_id": clue_id, "public": s.public, **{name: s.fields[name] for name in ck.CLUE_FIELDS}}
            for clue_id, s in sealed
        ],
    )
    execute_many(
        connection,
        _INSERT_WRAP,
        [
            {
                "id": new_id(),
                "clue_id": clue_id,
                "key_id": row.key_id,
                "reason": row.reason,
                "wrapped": ck.wrap_content_key(ck.public_from_json(row.public), clue_id, content_key),
                "created_at": now,
            }
            for clue_id, content_key, recipients in wraps
            for row in {r.key_id: r for r in reversed(recipients)}.values()  # one wrap per key
        ],
    )


def recipient(row: CompartmentKey, reason: str) -> Recipient:
    return Recipient(row.key_id, row.public, reason)


def add_wraps(
    session: Session,
    *,
    clue_id: str,
    content_key: bytes,
    recipients: Iterable[Recipient],
    fresh: bool = False,
) -> list[str]:
    """Wrap the clue's content key to each recipient (an active key) that has none yet; returns the key ids
    added. ``fresh``: a clue registered in this transaction, which has no wraps to read (intake may not)."""
    have: set[str] = (
        set()
        if fresh
        else set(session.scalars(select(ClueKeyWrap.key_id).where(ClueKeyWrap.clue_id == clue_id)))
    )
    added: list[str] = []
    for row in recipients:
        if row.key_id in have:
            continue
        have.add(row.key_id)
        wrapped = ck.wrap_content_key(ck.public_from_json(row.public), clue_id, content_key)
        session.add(
            ClueKeyWrap(
                id=new_id(),
                clue_id=clue_id,
                key_id=row.key_id,
                reason=row.reason,
                wrapped=wrapped,
                created_at=utcnow(),
            )
        )
        added.append(row.key_id)
    session.flush()
    return added


def remove_wraps(session: Session, *, clue_id: str, key_ids: Iterable[str]) -> int:
    ids = list(key_ids)
    if not ids:
        return 0
    result = session.execute(
        delete(ClueKeyWrap).where(ClueKeyWrap.clue_id == clue_id, ClueKeyWrap.key_id.in_(ids))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def wraps_of(session: Session, clue_id: str) -> list[ClueKeyWrap]:
    return list(session.scalars(select(ClueKeyWrap).where(ClueKeyWrap.clue_id == clue_id)))


def is_compartmented(session: Session, clue_id: str) -> bool:
    return session.get(ClueSealed, clue_id) is not None


def content_key(session: Session, *, clue_id: str, unlocked: ck.Unlocked | None) -> bytes:
    """The clue's content key as this request can open it, or a clear refusal."""
    if unlocked is None:
        raise Forbidden(
            "此请求未解锁个人密钥（令牌签发时未附密钥，或账号密钥已重置），不能读取线索内容",
            message_en="this request holds no unlocked personal key (a token issued without one, or a key "
            "reset since): it cannot read clue content",
        )
    wrapped = {row.key_id: row.wrapped for row in wraps_of(session, clue_id)}
    key = unlocked.content_key(clue_id, wrapped)
    if key is None:
        raise Forbidden(
            "此线索的密钥未授予您或您所在单位（未交办给您、需回避或权限已撤销）",
            message_en="this clue's content key is not wrapped to you or your unit (not assigned to you, "
            "recused, or revoked)",
        )
    return key


def open_clue(session: Session, *, clue_id: str, unlocked: ck.Unlocked | None) -> dict[str, bytes] | None:
    """The clue's fields opened with the requester's keys; None for a clue sealed before compartments (the
    caller opens it with the case key)."""
    sealed = session.get(ClueSealed, clue_id)
    if sealed is None:
        return None
    key = content_key(session, clue_id=clue_id, unlocked=unlocked)
    _fill_public(sealed, key)
    return {name: ck.open_clue_field(key, clue_id, name, getattr(sealed, name)) for name in ck.CLUE_FIELDS}


def _fill_public(sealed: ClueSealed, key: bytes) -> AnyKeyPair:
    """The clue's key pair; its public half is stored now if the clue was registered before it existed
    (a holder's read fills it, so later follow-ups are sealed to it)."""
    pair = ck.clue_pair(key, sealed.clue_id, ck.clue_suite(sealed.content))
    if sealed.public is None:
        sealed.public = ck.public_json(pair.public)
    return pair


# --- Items about a clue, sealed by processes that do not hold its content key -------------------------


def clue_public(session: Session, clue_id: str) -> AnyPublicKey | None:
    """The clue's public key; None for a clue sealed before compartments (or whose key pair no holder has
    opened yet): its items are sealed to the case key. Public columns only (intake calls it)."""
    public = session.scalar(select(ClueSealed.public).where(ClueSealed.clue_id == clue_id))
    return ck.public_from_json(public) if public else None


def seal_to_clue(session: Session, *, clue_id: str, data: bytes, binding: str) -> bytes | None:
    """``data`` sealed to the clue's public key, bound to its record (``messages/<id>/body``); None when the
    clue has none, and the caller seals to the case key."""
    public = clue_public(session, clue_id)
    return public.seal(data, binding) if public is not None else None


def clue_private(session: Session, *, clue_id: str, unlocked: ck.Unlocked | None) -> AnyKeyPair:
    """The clue's key pair through the requester's wrap of its content key, or the clear refusals of
    ``content_key``. For a page that opens many items of one clue: derive once, open each with
    ``compartments.keys.open_sealed``."""
    sealed = session.get(ClueSealed, clue_id)
    key = content_key(session, clue_id=clue_id, unlocked=unlocked)
    if sealed is None:  # no compartment, so nothing is sealed to its key: a wrap alone cannot exist
        raise EnvelopeError("this clue has no key pair")
    return _fill_public(sealed, key)


def open_from_clue(
    session: Session, *, clue_id: str, unlocked: ck.Unlocked | None, data: bytes, binding: str
) -> bytes:
    """An item sealed to the clue's key, opened with the requester's keys (403 without a wrap)."""
    return ck.open_sealed(clue_private(session, clue_id=clue_id, unlocked=unlocked), data, binding)


# --- Escrow ---------------------------------------------------------------------------------------------


def unit_pair_from_escrow(session: Session, *, unit_id: str, escrow: AnyKeyPair) -> AnyKeyPair | None:
    """The unit's current private key opened with the (rebuilt) escrow key; None if not sealed to it."""
    row = unit_key(session, unit_id)
    if row is None or row.escrow_wrap is None:
        return None
    try:
        return ck.open_private(
            escrow, ck.public_from_json(row.public), row.escrow_wrap, ck.escrow_binding(row.key_id)
        )
    except EnvelopeError:
        return None


def grant_unit_key(session: Session, *, unit: AnyKeyPair, staff_id: str) -> int:
    """Seal the unit's key to each of the person's active keys (new or waiting grants); returns how many."""
    sealed = 0
    for member in staff_keys(session, [staff_id]).get(staff_id, []):
        grant = session.get(UnitKeyGrant, (unit.public.key_id, member.key_id))
        if grant is None:
            grant = UnitKeyGrant(
                unit_key_id=unit.public.key_id,
                staff_key_id=member.key_id,
                staff_id=staff_id,
                created_at=utcnow(),
            )
            session.add(grant)
        if grant.wrapped is None:
            binding = ck.grant_binding(unit.public.key_id, member.key_id)
            grant.wrapped = ck.seal_private_to(unit, ck.public_from_json(member.public), binding)
            sealed += 1
    session.flush()
    return sealed
