"""Units, staff accounts and tokens. Services flush; the edge (route, CLI) commits."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth.models import ApiToken, Staff, StaffRole, Unit
from service.auth.permissions import Role
from service.auth.tokens import new_token, token_hash
from service.compartments import keys as compartment_keys
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


async def add_unit(
    session: AsyncSession,
    *,
    name: str,
    kind: str,
    parent_id: str | None,
    actor: str,
    aliases: list[str] | tuple[str, ...] = (),
) -> Unit:
    name = normalise_unit_name(name)
    if not name:
        raise Invalid("单位名称不能为空", message_en="unit name is empty")
    if await session.scalar(select(Unit.id).where(Unit.name == name)):
        raise Conflict("同名单位已存在", message_en="a unit with that name exists")
    if parent_id is not None and await session.get(Unit, parent_id) is None:
        raise NotFound("上级单位不存在", message_en="parent unit not found")
    unit = Unit(
        name=name, kind=kind, parent_id=parent_id, created_at=utcnow(), aliases=_aliases_json(aliases)
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


def _aliases_json(aliases: list[str] | tuple[str, ...]) -> str:
    cleaned = sorted({normalise_unit_name(a) for a in aliases} - {""})
    if any(len(a) < 2 or len(a) > 100 for a in cleaned):
        raise Invalid("单位别名须为2至100个字", message_en="an alias is 2 to 100 characters")
    return json.dumps(cleaned, ensure_ascii=False)


async def set_unit_aliases(session: AsyncSession, *, unit: Unit, aliases: list[str], actor: str) -> Unit:
    """Other names reporters use for the unit; recusal matches them like its name."""
    unit.aliases = _aliases_json(aliases)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="unit.aliases_set",
        object_type="unit",
        object_id=unit.id,
        details={"aliases": len(json.loads(unit.aliases))},
    )
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
    session: AsyncSession, wrapped: bytes | None, secret: str, label: str
) -> compartment_keys.Unlocked | None:
    """The keys a request holds: its token's or session's wrap of the personal key opened with the secret
    the caller presented, and the unit keys granted to that key. None when there is no (longer a) key."""
    if wrapped is None:
        return None
    try:
        personal = compartment_keys.open_under_secret(wrapped, secret, label)
    except (EnvelopeError, ValueError):
        return None
    return await session.run_sync(lambda s: compartments.unlocked(s, personal))


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
        unlocked=await unlock(session, api_token.key_wrap, token, token_label(api_token.id)),
    )
