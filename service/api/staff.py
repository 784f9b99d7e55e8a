"""Staff accounts API: who am I, units, staff and tokens (admins manage; supervisors may list)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from service.api.staff_schemas import (
    AliasIn,
    MeOut,
    StaffIn,
    StaffOut,
    StaffUnitIn,
    TokenOut,
    UnitChange,
    UnitIn,
    UnitOut,
)
from service.auth import service as auth_service
from service.auth.models import Staff, Unit
from service.auth.permissions import Action
from service.auth.service import Principal
from service.auth.unit_names import aliases_of
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized
from service.registry import service as registry_service

router = APIRouter(prefix="/api/v1", tags=["staff accounts"], responses=STAFF_ERRORS)
AUTH_ERRORS = STAFF_ERRORS


def _unit_out(unit: Unit) -> UnitOut:
    return UnitOut(
        id=unit.id, name=unit.name, kind=unit.kind, parent_id=unit.parent_id, aliases=aliases_of(unit)
    )


def _staff_out(staff: Staff) -> StaffOut:
    return StaffOut(
        id=staff.id,
        name=staff.name,
        roles=sorted(r.role for r in staff.roles),
        unit_id=staff.unit_id,
        disabled=staff.disabled,
    )


@router.get("/me", summary="Who am I (the token's account)", response_model=MeOut, responses=AUTH_ERRORS)
async def me(
    principal: Annotated[Principal, authorized(Action.read_own_profile)], session: SessionDep
) -> MeOut:
    unit = await session.get(Unit, principal.unit_id) if principal.unit_id else None
    return MeOut(
        id=principal.staff_id,
        name=principal.name,
        roles=sorted(principal.roles),
        unit=_unit_out(unit) if unit else None,
    )


@router.get("/units", summary="List units", response_model=list[UnitOut], responses=AUTH_ERRORS)
async def list_units(
    principal: Annotated[Principal, authorized(Action.list_units)], session: SessionDep
) -> list[UnitOut]:
    return [_unit_out(u) for u in await auth_service.list_units(session)]


@router.post(
    "/units",
    summary="Create a unit",
    status_code=201,
    response_model=UnitOut,
    responses={
        **AUTH_ERRORS,
        404: {"description": "Parent unit not found"},
        409: {"description": "Name taken"},
    },
)
async def add_unit(
    body: UnitIn, principal: Annotated[Principal, authorized(Action.manage_units)], session: SessionDep
) -> UnitOut:
    unit = await auth_service.add_unit(
        session, name=body.name, kind=body.kind, parent_id=body.parent_id, actor=principal.actor
    )
    return _unit_out(unit)


UNIT_ERRORS = {
    **AUTH_ERRORS,
    404: {"description": "No such unit, parent unit or alias"},
    409: {"description": "Name or alias taken by another unit, or a move that would make a cycle"},
}


@router.put(
    "/units/{unit_id}",
    summary="Rename a unit or move it under another parent",
    response_model=UnitOut,
    responses=UNIT_ERRORS,
)
async def update_unit(
    unit_id: str,
    body: UnitChange,
    principal: Annotated[Principal, authorized(Action.manage_units)],
    session: SessionDep,
) -> UnitOut:
    unit = await auth_service.update_unit(
        session, unit_id=unit_id, name=body.name, parent_id=body.parent_id, actor=principal.actor
    )
    return _unit_out(unit)


@router.post(
    "/units/{unit_id}/aliases",
    summary="Add another name reporters use for a unit",
    status_code=201,
    response_model=UnitOut,
    responses=UNIT_ERRORS,
)
async def add_unit_alias(
    unit_id: str,
    body: AliasIn,
    principal: Annotated[Principal, authorized(Action.manage_units)],
    session: SessionDep,
) -> UnitOut:
    unit = await auth_service.add_unit_alias(
        session, unit_id=unit_id, alias=body.alias, actor=principal.actor
    )
    return _unit_out(unit)


@router.delete(
    "/units/{unit_id}/aliases/{alias}",
    summary="Remove one of a unit's other names",
    response_model=UnitOut,
    responses=UNIT_ERRORS,
)
async def remove_unit_alias(
    unit_id: str,
    alias: str,
    principal: Annotated[Principal, authorized(Action.manage_units)],
    session: SessionDep,
) -> UnitOut:
    unit = await auth_service.remove_unit_alias(session, unit_id=unit_id, alias=alias, actor=principal.actor)
    return _unit_out(unit)


@router.get("/staff", summary="List staff accounts", response_model=list[StaffOut], responses=AUTH_ERRORS)
async def list_staff(
    principal: Annotated[Principal, authorized(Action.list_staff)], session: SessionDep
) -> list[StaffOut]:
    return [_staff_out(s) for s in await auth_service.list_staff(session)]


@router.post(
    "/staff",
    summary="Create a staff account",
    status_code=201,
    response_model=StaffOut,
    responses={**AUTH_ERRORS, 404: {"description": "Unit not found"}, 409: {"description": "Name taken"}},
)
async def add_staff(
    body: StaffIn,
    principal: Annotated[Principal, authorized(Action.manage_staff)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> StaffOut:
    staff, _ = await auth_service.add_staff(
        session,
        name=body.name,
        roles=[r.value for r in body.roles],
        unit_id=body.unit_id,
        actor=principal.actor,
        keys=runtime.keys,
    )
    return _staff_out(await auth_service.get_staff(session, staff.id))


@router.post(
    "/staff/{staff_id}/disable",
    summary="Disable a staff account and revoke its tokens",
    response_model=StaffOut,
    responses={**AUTH_ERRORS, 404: {"description": "No such account"}},
)
async def disable_staff(
    staff_id: str, principal: Annotated[Principal, authorized(Action.manage_staff)], session: SessionDep
) -> StaffOut:
    staff = await auth_service.get_staff(session, staff_id)
    await auth_service.disable_staff(session, staff=staff, actor=principal.actor)
    return _staff_out(staff)


@router.put(
    "/staff/{staff_id}/unit",
    summary="Move a staff member to another unit (or out of theirs)",
    response_model=StaffOut,
    responses={
        **AUTH_ERRORS,
        404: {"description": "No such account or unit"},
        409: {"description": "Already in that unit, or the account is disabled"},
    },
)
async def move_staff(
    staff_id: str,
    body: StaffUnitIn,
    principal: Annotated[Principal, authorized(Action.manage_staff)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> StaffOut:
    """Their grant of the old unit's key goes and that key is rotated as after offboarding; clues assigned to
    them stay readable while assigned; the new unit's key is granted as to any new member. Audited."""
    await registry_service.move_staff(
        session, staff_id=staff_id, unit_id=body.unit_id, actor=principal.actor, keys=runtime.keys
    )
    return _staff_out(await auth_service.get_staff(session, staff_id))


@router.post(
    "/staff/{staff_id}/tokens",
    summary="Issue an API token (shown once)",
    status_code=201,
    response_model=TokenOut,
    responses={
        **AUTH_ERRORS,
        404: {"description": "No such account"},
        409: {"description": "Account disabled"},
    },
)
async def issue_token(
    staff_id: str,
    principal: Annotated[Principal, authorized(Action.manage_staff)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TokenOut:
    staff = await auth_service.get_staff(session, staff_id)
    row, token = await auth_service.issue_token(
        session,
        staff=staff,
        ttl_days=runtime.settings.token_ttl_days,
        actor=principal.actor,
        personal=principal.own_key(staff.id),
    )
    return TokenOut(id=row.id, expires_at=row.expires_at, token=token)


@router.post(
    "/tokens/{token_id}/revoke",
    summary="Revoke an API token",
    status_code=204,
    responses={**AUTH_ERRORS, 404: {"description": "No such token"}},
)
async def revoke_token(
    token_id: str, principal: Annotated[Principal, authorized(Action.manage_staff)], session: SessionDep
) -> None:
    await auth_service.revoke_token(session, token_id=token_id, actor=principal.actor)
