"""Staff API of the mailbox channel: mail counts, the quarantine, notification preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from service.auth.permissions import Action, require
from service.http.deps import SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import CurrentStaff
from service.mailbox import service as mail_service
from service.notify import service as notify_service

router = APIRouter(prefix="/api/v1", tags=["mail"], responses=STAFF_ERRORS)


class QuarantineItemOut(BaseModel):
    id: str
    received_at: datetime
    size: int
    reason: str
    via: str


class QuarantinePage(BaseModel):
    items: list[QuarantineItemOut]
    counts: dict[str, dict[str, int]] = Field(description="outcome → kind → number of messages")


class SealedMail(BaseModel):
    id: str
    outcome: str = Field(description="quarantined (the raw message) or filtered (masked subject and body)")
    binding: str
    sealed_to: str
    envelope: str = Field(description="base64 envelope; open with the identity private key (custodian)")


class NotificationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: Annotated[str, Field(max_length=254)] = ""
    mode: Annotated[str, Field(pattern="^(immediate|daily|off)$")]


class NotificationsOut(BaseModel):
    address: str
    mode: str


@router.get("/mail/quarantine", summary="List quarantined mail", response_model=QuarantinePage)
async def list_quarantine(
    principal: CurrentStaff,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    outcome: Annotated[str, Query(pattern="^(quarantined|filtered)$")] = "quarantined",
) -> QuarantinePage:
    items = await mail_service.list_quarantine(session, principal=principal, outcome=outcome, limit=limit)
    return QuarantinePage(
        items=[QuarantineItemOut(**vars(i)) for i in items], counts=await mail_service.counts(session)
    )


@router.post(
    "/mail/quarantine/{mail_id}/read",
    summary="Fetch one quarantined mail, or a filtered one within its retention, sealed (audited)",
    response_model=SealedMail,
    responses={404: {"description": "No such quarantined message, or a filtered one past its retention"}},
)
async def read_quarantined(mail_id: str, principal: CurrentStaff, session: SessionDep) -> SealedMail:
    return SealedMail(**await mail_service.read_quarantined(session, principal=principal, mail_id=mail_id))


@router.get("/me/notifications", summary="My notification settings", response_model=NotificationsOut)
async def get_notifications(principal: CurrentStaff, session: SessionDep) -> NotificationsOut:
    require(principal.roles, Action.set_own_notifications)
    row = await notify_service.get_preference(session, staff_id=principal.staff_id)
    return (
        NotificationsOut(address=row.address, mode=row.mode)
        if row
        else NotificationsOut(address="", mode="off")
    )


@router.put("/me/notifications", summary="Change my notification settings", response_model=NotificationsOut)
async def put_notifications(
    body: NotificationsIn, principal: CurrentStaff, session: SessionDep
) -> NotificationsOut:
    require(principal.roles, Action.set_own_notifications)
    row = await notify_service.set_preference(
        session, staff_id=principal.staff_id, address=body.address, mode=body.mode, actor=principal.actor
    )
    return NotificationsOut(address=row.address, mode=row.mode)
