"""Units, staff accounts and tokens. Services flush; the edge (route, CLI) commits."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth import unit_names
from service.auth.models import ApiToken, Staff, StaffRole, Unit
from service.auth.permissions import Role
from service.auth.tokens import new_token, token_hash
from service.compartments import keys as compartment_keys
from service.compartments import rotation
from service.compartments import service as compartments
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import AnyKeyPair
from service.platform.db import new_id
from service.platform.errors import Conflict, Invalid, NotFound, Unauthenticated
from service.platform.timeutil import utcnow


@dataclass(frozen=True)
class Principal:
    """The authenticated staff member behind a request."""

    staff_id: str
    name: str
    unit_id: str | None
    roles: frozenset[str]
    token_id: str
    # The keys this request unlocked (compartments): the personal key from the token's or session's own
    # wrap, and the unit keys granted to it. None: the request can open no compartmented clue.
    unlocked: compartment_keys.Unlocked | None = field(default=None, repr=False, compare=False)

    def own_key(self, staff_id: str) -> AnyKeyPair | None:
        """The personal key this request unlocked, if ``staff_id`` is the requester's own account: a token a
        person issues to themselves carries their key; one an administrator issues for someone else cannot."""
        return self.unlocked.personal if self.unlocked is not None and staff_id == self.staff_id else None

    @property
    def actor(self) -> str:
        return audit_service.staff_actor(self.staff_id)


def normalise_unit_name(name: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", name) if not ch.isspace())


async def _lock_units(session: AsyncSession) -> list[Unit]:
    """Every unit, row-locked in id order for the rest of the transaction. A change of a unit's name, place
    or aliases is checked against the whole tree and every other name; two admins changing units at once
    must not both pass the check (a cycle, two units answering to the same words). A short table."""
    query = (
        select(Unit)
        .order_by(Unit.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars())


def _clean_name(name: str) -> str:
    name = normalise_unit_name(name)
    if not name:
        raise Invalid("单位名称不能为空", message_en="unit name is empty")
    if len(name) > 100:
        raise Invalid("单位名称不能超过100个字", message_en="a unit name is at most 100 characters")
    return name


def _check_words_free(units: list[Unit], *, unit_id: str | None, name: str, aliases: list[str]) -> None:
    """The unit's name and aliases must not be the words another unit goes by: recusal would take a report
    about one for a report about both. Compared as recusal compares them (``unit_names.normalise``)."""
    if any(u.name == name for u in units if u.id != unit_id):
        raise Conflict("同名单位已存在", message_en="a unit with that name exists")
    taken = {key: u for u in units if u.id != unit_id for key in unit_names.unit_names(u)}
    for word in (name, *aliases):
        other = taken.get(unit_names.normalise(word))
        if other is not None:
            raise Conflict(
                f"“{word}”已是单位“{other.name}”的名称或别名",
                message_en=f"{word!r} is already the name or an alias of the unit {other.name!r}",
            )


def _clean_aliases(name: str, aliases: list[str] | tuple[str, ...]) -> list[str]:
    """Aliases as stored (NFKC, no spaces), each one recusal can use: at least two letters once punctuation
    is gone, something besides generic words (an alias "派出所" would name the unit in every report about
    any police station), not the unit's own name, no two alike."""
    cleaned: dict[str, str] = {}
    for alias in (normalise_unit_name(a) for a in aliases):
        if not alias:
            continue
        key = unit_names.normalise(alias)
        if len(alias) > 100 or len(key) < unit_names.MIN_MATCH_LENGTH:
            raise Invalid("单位别名须为2至100个字", message_en="an alias is 2 to 100 characters")
        if not unit_names.distinctive(alias):
            raise Invalid(
                f"别名“{alias}”只有通用词（如派出所、公安局），会与所有同类单位混淆",
                message_en=f"the alias {alias!r} has only generic words (such as 派出所, 公安局) "
                "and would match every such unit",
            )
        if key == unit_names.normalise(name):
            raise Invalid(
                f"别名“{alias}”与单位名称相同", message_en=f"the alias {alias!r} is the unit's own name"
            )
        cleaned.setdefault(key, alias)
    return sorted(cleaned.values())


async def add_unit(
    session: AsyncSession,
    *,
    name: str,
    kind: str,
    parent_id: str | None,
    actor: str,
    aliases: list[str] | tuple[str, ...] = (),
) -> Unit:
    name = _clean_name(name)
    cleaned = _clean_aliases(name, aliases)
    units = await _lock_units(session)
    _check_words_free(units, unit_id=None, name=name, aliases=cleaned)
    if parent_id is not None and parent_id not in {u.id for u in units}:
        raise NotFound("上级单位不存在", message_en="parent unit not found")
    unit = Unit(
        name=name,
        kind=kind,
        parent_id=parent_id,
        created_at=utcnow(),
        aliases=json.dumps(cleaned, ensure_ascii=False),
    )
    session.add(unit)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="unit.created",
        object_type="unit",
        object_id=unit.id,
        details={"parent_id": parent_id},
    )
    return unit


async def update_unit(
    session: AsyncSession, *, unit_id: str, name: str, parent_id: str | None, actor: str
) -> Unit:
    """Rename a unit and/or move it under another parent (None: a top unit). A move under the unit itself or
    one of its own subunits is refused (the tree would become a cycle). Audited with before and after."""
    units = await _lock_units(session)
    by_id = {u.id: u for u in units}
    unit = by_id.get(unit_id)
    if unit is None:
        raise NotFound("单位不存在", message_en="unit not found")
    name = _clean_name(name)
    if parent_id is not None:
        if parent_id not in by_id:
            raise NotFound("上级单位不存在", message_en="parent unit not found")
        ancestor: str | None = parent_id
        seen: set[str] = set()
        while ancestor is not None and ancestor not in seen:  # ``seen``: bounded even on a damaged tree
            seen.add(ancestor)
            if ancestor == unit.id:
                raise Conflict(
                    "不能把单位移到它自己或它的下级单位之下",
                    message_en="a unit cannot move under itself or one of its own subunits",
                )
            ancestor = by_id[ancestor].parent_id
    _check_words_free(units, unit_id=unit.id, name=name, aliases=[])  # only the name is new
    if unit_names.normalise(name) in {unit_names.normalise(a) for a in unit_names.aliases_of(unit)}:
        raise Conflict(
            "新名称是本单位的别名，请先删除该别名",
            message_en="the new name is one of the unit's aliases: remove that alias first",
        )
    before = {"name": unit.name, "parent_id": unit.parent_id}
    after = {"name": name, "parent_id": parent_id}
    if before == after:
        return unit
    unit.name, unit.parent_id = name, parent_id
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="unit.updated",
        object_type="unit",
        object_id=unit.id,
        details={"before": before, "after": after},
    )
    return unit


async def set_unit_aliases(
    session: AsyncSession, *, unit: Unit, aliases: list[str] | tuple[str, ...], actor: str
) -> Unit:
    """Other names reporters use for the unit; recusal matches them like its name. Audited with before and
    after."""
    units = await _lock_units(session)  # refreshes ``unit`` too
    cleaned = _clean_aliases(unit.name, aliases)
    _check_words_free(units, unit_id=unit.id, name=unit.name, aliases=cleaned)
    before = unit_names.aliases_of(unit)
    unit.aliases = json.dumps(cleaned, ensure_ascii=False)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="unit.aliases_set",
        object_type="unit",
        object_id=unit.id,
        details={"before": before, "after": cleaned},
    )
    return unit


async def add_unit_alias(session: AsyncSession, *, unit_id: str, alias: str, actor: str) -> Unit:
    unit = await find_unit_by_id(session, unit_id)
    aliases = unit_names.aliases_of(unit)
    if unit_names.normalise(alias) in {unit_names.normalise(a) for a in aliases}:
        raise Conflict("本单位已有此别名", message_en="the unit already has that alias")
    if not normalise_unit_name(alias):
        raise Invalid("别名不能为空", message_en="the alias is empty")
    return await set_unit_aliases(session, unit=unit, aliases=[*aliases, alias], actor=actor)


async def remove_unit_alias(session: AsyncSession, *, unit_id: str, alias: str, actor: str) -> Unit:
    unit = await find_unit_by_id(session, unit_id)
    aliases = unit_names.aliases_of(unit)
    kept = [a for a in aliases if unit_names.normalise(a) != unit_names.normalise(alias)]
    if len(kept) == len(aliases):
        raise NotFound("本单位没有这个别名", message_en="the unit has no such alias")
    return await set_unit_aliases(session, unit=unit, aliases=kept, actor=actor)


async def find_unit_by_id(session: AsyncSession, unit_id: str) -> Unit:
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("单位不存在", message_en="unit not found")
    return unit


async def list_units(session: AsyncSession) -> list[Unit]:
    return list((await session.execute(select(Unit).order_by(Unit.name))).scalars())


async def find_unit(session: AsyncSession, name_or_id: str) -> Unit:
    unit = await session.get(Unit, name_or_id) or await session.scalar(
        select(Unit).where(Unit.name == normalise_unit_name(name_or_id))
    )
    if unit is None:
        raise NotFound("单位不存在", message_en="unit not found")
    return unit


def unit_and_descendants(units: list[Unit], unit_id: str) -> set[str]:
    """The unit's id and the ids of every unit below it, out of ``units`` (the places it may not move to)."""
    found = {unit_id}
    grew = True
    while grew:
        grew = False
        for unit in units:
            if unit.parent_id in found and unit.id not in found:
                found.add(unit.id)
                grew = True
    return found


async def unit_and_ancestors(session: AsyncSession, unit_id: str | None) -> list[str]:
    """The unit's id and every parent's, nearest first (bounded, so a cycle cannot hang)."""
    chain: list[str] = []
    while unit_id and unit_id not in chain and len(chain) < 32:
        chain.append(unit_id)
        unit_id = await session.scalar(select(Unit.parent_id).where(Unit.id == unit_id))
    return chain


async def add_staff(
    session: AsyncSession,
    *,
    name: str,
    roles: list[str],
    unit_id: str | None,
    actor: str,
    keys: compartment_keys.KeySource,
) -> tuple[Staff, AnyKeyPair]:
    """A new account and its personal key pair (compartments). The pair is returned while it is in memory,
    so the caller can seal it to a first token (``issue_token(personal=…)``); otherwise it is reachable only
    after a password is set, which gives a new one (whoever sets it does not hold this one)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("姓名不能为空", message_en="name is empty or too long")
    unknown = set(roles) - {r.value for r in Role}
    if not roles or unknown:
        raise Invalid("角色无效", message_en=f"roles must be among {', '.join(r.value for r in Role)}")
    if await session.scalar(select(Staff.id).where(Staff.name == name)):
        raise Conflict("同名账号已存在", message_en="an account with that name exists")
    if unit_id is not None and await session.get(Unit, unit_id) is None:
        raise NotFound("单位不存在", message_en="unit not found")
    staff = Staff(
        name=name, unit_id=unit_id, created_at=utcnow(), roles=[StaffRole(role=r) for r in sorted(set(roles))]
    )
    session.add(staff)
    await session.flush()
    personal = await session.run_sync(
        lambda s: compartments.enrol_staff(s, staff_id=staff.id, unit_id=unit_id, keys=keys)
    )
    await audit_service.record(
        session,
        actor=actor,
        action="staff.created",
        object_type="staff",
        object_id=staff.id,
        details={"roles": sorted(set(roles)), "unit_id": unit_id, "key_id": personal.public.key_id},
    )
    return staff, personal


async def get_staff(session: AsyncSession, staff_id: str) -> Staff:
    staff = await session.scalar(select(Staff).options(selectinload(Staff.roles)).where(Staff.id == staff_id))
    if staff is None:
        raise NotFound("账号不存在", message_en="staff account not found")
    return staff


async def find_staff(session: AsyncSession, name_or_id: str) -> Staff:
    staff = await session.scalar(
        select(Staff)
        .options(selectinload(Staff.roles))
        .where((Staff.id == name_or_id) | (Staff.name == name_or_id.strip()))
    )
    if staff is None:
        raise NotFound("账号不存在", message_en="staff account not found")
    return staff


async def list_staff(session: AsyncSession) -> list[Staff]:
    return list(
        (
            await session.execute(select(Staff).options(selectinload(Staff.roles)).order_by(Staff.name))
        ).scalars()
    )


async def disable_staff(session: AsyncSession, *, staff: Staff, actor: str) -> None:
    """Offboarding: the account stops working, every token it holds is revoked, and every wrap of a clue
    key and unit key to its personal key is removed (compartments)."""
    staff.disabled = True
    now = utcnow()
    tokens = await session.execute(
        select(ApiToken).where(ApiToken.staff_id == staff.id, ApiToken.revoked_at.is_(None))
    )
    for token in tokens.scalars():
        token.revoked_at = now
        token.key_wrap = None
    await session.flush()
    removed = await session.run_sync(lambda s: compartments.revoke_staff(s, staff_id=staff.id))
    await audit_service.record(
        session,
        actor=actor,
        action="staff.disabled",
        object_type="staff",
        object_id=staff.id,
        details={"clue_wraps_removed": removed},
    )


async def issue_token(
    session: AsyncSession, *, staff: Staff, ttl_days: int, actor: str, personal: AnyKeyPair | None = None
) -> tuple[ApiToken, str]:
    """A bearer token. With ``personal`` (the holder's key, in memory at account creation or in the holder's
    own unlocked request) the token carries its own wrap of it and reads what the holder may read; without,
    it authenticates but opens no compartmented clue."""
    if staff.disabled:
        raise Conflict("账号已停用", message_en="account is disabled")
    token = new_token()
    now = utcnow()
    row = ApiToken(
        id=new_id(),
        staff_id=staff.id,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=ttl_days),
    )
    if personal is not None:
        row.key_wrap = compartment_keys.seal_under_secret(personal, token, token_label(row.id))
    session.add(row)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="token.issued",
        object_type="staff",
        object_id=staff.id,
        details={
            "token_id": row.id,
            "expires_at": row.expires_at.isoformat(),
            "carries_key": row.key_wrap is not None,
        },
    )
    return row, token


def token_label(token_id: str) -> str:
    return f"api_tokens/{token_id}"


async def unlock(
    session: AsyncSession, wrapped: bytes | None, secret: str, label: str, *, staff_id: str
) -> compartment_keys.Unlocked | None:
    """The keys a request holds: its token's or session's wrap of the personal key opened with the secret
    the caller presented, and the unit keys granted to that key. None when there is no (longer a) key."""
    if wrapped is None:
        return None
    try:
        personal = compartment_keys.open_under_secret(wrapped, secret, label)
    except (EnvelopeError, ValueError):
        return None
    unlocked = await session.run_sync(lambda s: compartments.unlocked(s, personal))
    return await advance_rotations(session, unlocked, staff_id=staff_id)


async def advance_rotations(
    session: AsyncSession, unlocked: compartment_keys.Unlocked | None, *, staff_id: str
) -> compartment_keys.Unlocked | None:
    """A unit key whose holder left is replaced by the remaining members' requests, a bounded chunk each
    (``compartments.rotation``). Returns the request's keys with the replacements it made or continued: the
    chunk moved clue wraps to them, and the same request must still open those clues."""
    if unlocked is None or not unlocked.units:
        return unlocked
    steps = await rotation.advance(session, unlocked=unlocked, actor=audit_service.staff_actor(staff_id))
    held = unlocked.pairs
    new = [step.new_pair for step in steps if step.new_pair.public.key_id not in held]
    return replace(unlocked, units=(*unlocked.units, *new)) if new else unlocked


async def revoke_token(session: AsyncSession, *, token_id: str, actor: str) -> None:
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("令牌不存在", message_en="token not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
        await audit_service.record(
            session,
            actor=actor,
            action="token.revoked",
            object_type="staff",
            object_id=row.staff_id,
            details={"token_id": row.id},
        )


async def list_tokens(session: AsyncSession, *, staff_id: str) -> list[ApiToken]:
    return list(
        (
            await session.execute(
                select(ApiToken).where(ApiToken.staff_id == staff_id).order_by(ApiToken.created_at)
            )
        ).scalars()
    )


async def authenticate(session: AsyncSession, token: str) -> Principal:
    """One answer for every failure (unknown, expired, revoked, disabled), so tokens cannot be probed."""
    row = await session.execute(
        select(ApiToken, Staff)
        .join(Staff, Staff.id == ApiToken.staff_id)
        .options(selectinload(Staff.roles))
        .where(ApiToken.token_hash == token_hash(token))
    )
    found = row.first()
    if found is None:
        raise Unauthenticated("需要有效的登录凭据", message_en="a valid token is required")
    api_token, staff = found
    if api_token.revoked_at is not None or api_token.expires_at <= utcnow() or staff.disabled:
        raise Unauthenticated("需要有效的登录凭据", message_en="a valid token is required")
    return Principal(
        staff_id=staff.id,
        name=staff.name,
        unit_id=staff.unit_id,
        roles=frozenset(r.role for r in staff.roles),
        token_id=api_token.id,
        unlocked=await unlock(
            session, api_token.key_wrap, token, token_label(api_token.id), staff_id=staff.id
        ),
    )
