"""Legal holds over the API (supervisors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.auth.permissions import Action
from service.auth.service import Principal
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized
from service.retention import service as retention_service

router = APIRouter(prefix="/api/v1", tags=["retention"], responses=STAFF_ERRORS)
NOT_FOUND = {404: {"description": "No such clue"}}


class LegalHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    held: bool
    reason: str = Field(min_length=1, max_length=2000)


class LegalHoldOut(BaseModel):
    clue_id: str
    held: bool
    set_by: str | None = None
    set_at: datetime | None = None


@router.get(
    "/clues/{clue_id}/legal-hold",
    summary="Whether a clue is under legal hold",
    response_model=LegalHoldOut,
    responses=NOT_FOUND,
)
async def legal_hold(
    clue_id: str, principal: Annotated[Principal, authorized(Action.manage_legal_hold)], session: SessionDep
) -> LegalHoldOut:
    """Whether retention may purge the clue."""
    return LegalHoldOut(**vars(await retention_service.get_hold(session, clue_id=clue_id)))


@router.put(
    "/clues/{clue_id}/legal-hold",
    summary="Put on or lift a legal hold",
    response_model=LegalHoldOut,
    responses=NOT_FOUND,
)
async def set_legal_hold(
    clue_id: str,
    body: LegalHoldIn,
    principal: Annotated[Principal, authorized(Action.manage_legal_hold)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> LegalHoldOut:
    """Put on or lift a legal hold; while held, retention never purges the clue. Audited."""
    view = await retention_service.set_hold(
        session, clue_id=clue_id, held=body.held, reason=body.reason, principal=principal, keys=runtime.keys
    )
    return LegalHoldOut(**vars(view))
