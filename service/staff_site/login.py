"""Admin API for the staff web login: set a password, enrol or reset TOTP, end web sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.auth import service as auth_service
from service.auth import sessions as session_service
from service.auth.permissions import Action
from service.auth.service import Principal
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized

router = APIRouter(prefix="/api/v1/staff", tags=["staff accounts"], responses=STAFF_ERRORS)

ERRORS = {
    401: {"description": "Missing, unknown, expired or revoked token"},
    403: {"description": "The caller's role may not do this"},
    404: {"description": "No such account"},
}


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="At least 12 characters. Never logged or audited."
    )


class TotpOut(BaseModel):
    otpauth_uri: str = Field(description="Shown once: scan it into the staff member's authenticator app.")


class SessionsEnded(BaseModel):
    sessions_ended: int


@router.post(
    "/{staff_id}/password",
    summary="Set a staff member's web-login password",
    status_code=204,
    responses={**ERRORS, 422: {"description": "Too weak"}},
)
async def set_password(
    staff_id: str,
    body: PasswordIn,
    principal: Annotated[Principal, authorized(Action.manage_staff_login)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> None:
    """Set a staff member's web-login password (ends their web sessions). Audited, without the password."""
    staff = await auth_service.get_staff(session, staff_id)
    await session_service.set_password(
        session,
        staff=staff,
        password=body.password,
        actor=principal.actor,
        keys=runtime.keys,
        personal=principal.own_key(staff.id),
    )


@router.post(
    "/{staff_id}/totp",
    summary="Enrol a new one-time-code (TOTP) secret",
    status_code=201,
    response_model=TotpOut,
    responses=ERRORS,
)
async def enrol_totp(
    staff_id: str,
    principal: Annotated[Principal, authorized(Action.manage_staff_login)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TotpOut:
    """A new TOTP secret (replacing any old one); the otpauth URI is returned once."""
    staff = await auth_service.get_staff(session, staff_id)
    totp_key = runtime.lookup_key(session_service.TOTP_KEY_LABEL)
    uri = await session_service.enrol_totp(session, totp_key=totp_key, staff=staff, actor=principal.actor)
    return TotpOut(otpauth_uri=uri)


@router.delete(
    "/{staff_id}/totp", summary="Remove the one-time-code (TOTP) secret", status_code=204, responses=ERRORS
)
async def reset_totp(
    staff_id: str, principal: Annotated[Principal, authorized(Action.manage_staff_login)], session: SessionDep
) -> None:
    """Remove the TOTP secret (lost phone): no web login until a new enrolment."""
    staff = await auth_service.get_staff(session, staff_id)
    await session_service.reset_totp(session, staff=staff, actor=principal.actor)


@router.post(
    "/{staff_id}/sessions/revoke",
    summary="End every web session of an account",
    response_model=SessionsEnded,
    responses=ERRORS,
)
async def end_sessions(
    staff_id: str, principal: Annotated[Principal, authorized(Action.manage_staff_login)], session: SessionDep
) -> SessionsEnded:
    """End every web session of the account now (disabling an account also ends them)."""
    staff = await auth_service.get_staff(session, staff_id)
    ended = await session_service.end_all_sessions(session, staff_id=staff.id, actor=principal.actor)
    return SessionsEnded(sessions_ended=ended)
