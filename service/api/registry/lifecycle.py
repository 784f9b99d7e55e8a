"""Registry API: Lifecycle steps, reassignment, history, transfers and transfer requests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.api.registry.common import (
    CONFLICT,
    ERRORS,
    NOT_FOUND,
    clue_summary,
    transition_out,
)
from service.api.registry.schemas import (
    ClueSummary,
    HistoryItem,
    ReassignIn,
    TransferOut,
    TransitionIn,
    TransitionOut,
)
from service.auth.permissions import Action
from service.auth.service import Principal
from service.handoff import service as handoff_service
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import CurrentStaff, authorized
from service.registry import (
    lifecycle,
    routing,
    transfer_requests,
)
from service.registry import service as registry_service
from service.registry.models import (
    ClueState,
    ClueTransfer,
)

router = APIRouter(prefix="/api/v1", tags=["clues"], responses=STAFF_ERRORS)


@router.post(
    "/clues/{clue_id}/transitions",
    summary="Take a lifecycle step on a clue",
    response_model=TransitionOut,
    status_code=201,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def transition_clue(
    clue_id: str, body: TransitionIn, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> TransitionOut:
    """Move a clue along its lifecycle. Illegal steps: 409; missing or bad fields: 422. Audited. A transfer
    or sending-on also produces the signed dossier, recorded against the hand-off (`GET …/dossiers`)."""
    request = lifecycle.TransitionRequest(
        **{**body.model_dump(), "attachment_ids": tuple(body.attachment_ids)}
    )
    row = await handoff_service.apply_transition(
        session, clue_id=clue_id, request=request, principal=principal, runtime=runtime
    )
    return transition_out(row)


@router.get(
    "/clues/{clue_id}/history",
    summary="A clue's full history",
    response_model=list[HistoryItem],
    responses={**ERRORS, **NOT_FOUND},
)
async def clue_history(
    clue_id: str, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> list[HistoryItem]:
    """Every step with who, when, why and the approver. Reading it is audited."""
    entries = await lifecycle.history(session, clue_id=clue_id, principal=principal, runtime=runtime)
    return [
        HistoryItem(
            **transition_out(e.transition).model_dump(),
            **{
                k: e.sealed.get(k)
                for k in ("reason", "summary", "feedback", "clearing_record", "false_report_note")
            },
        )
        for e in entries
    ]


@router.get("/clues/{clue_id}/actions", summary="Steps open on a clue now", responses={**ERRORS, **NOT_FOUND})
async def clue_actions(clue_id: str, principal: CurrentStaff, session: SessionDep) -> dict[str, object]:
    """The lifecycle steps open from the clue's current status."""
    clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    state = await session.get(ClueState, clue.id)
    method = state.disposal_method if state else None
    return {"status": clue.status, "actions": lifecycle.allowed_actions(clue.status, method)}


@router.post(
    "/clues/{clue_id}/reassign",
    summary="Reassign a clue with a reason",
    response_model=ClueSummary,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def reassign_clue(
    clue_id: str,
    body: ReassignIn,
    principal: Annotated[Principal, authorized(Action.decide_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> ClueSummary:
    """Reassign with a reason (kept sealed in the history). Recusal applies."""
    clue = await lifecycle.reassign_clue(
        session,
        clue_id=clue_id,
        assignee_id=body.assignee_id,
        reason=body.reason,
        principal=principal,
        runtime=runtime,
        confirm_recusal=body.confirm_recusal,
    )
    return clue_summary(clue)


def _transfer_out(row: ClueTransfer) -> TransferOut:
    return TransferOut(
        id=row.id,
        kind=row.kind,
        to_unit_id=row.to_unit_id,
        target=row.target,
        document_number=row.document_number,
        transferred_at=row.transferred_at,
        expected_feedback_at=row.expected_feedback_at,
        feedback_at=row.feedback_at,
        created_by=row.created_by,
    )


@router.get(
    "/clues/{clue_id}/transfers",
    summary="List a clue's hand-offs",
    response_model=list[TransferOut],
    responses={**ERRORS, **NOT_FOUND},
)
async def list_transfers(clue_id: str, principal: CurrentStaff, session: SessionDep) -> list[TransferOut]:
    """Every hand-off (to a unit, another organ, investigation, or an out-of-scope referral)."""
    rows = await routing.list_transfers(session, clue_id=clue_id, principal=principal)
    return [_transfer_out(r) for r in rows]


@router.post(
    "/clues/{clue_id}/transfers/{transfer_id}/feedback",
    summary="Record a receiving unit's feedback on a hand-off",
    response_model=TransferOut,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def transfer_feedback(
    clue_id: str,
    transfer_id: str,
    principal: Annotated[Principal, authorized(Action.decide_clue)],
    session: SessionDep,
) -> TransferOut:
    """Record that the receiving unit or organ reported back (audited; late if after the expected date)."""
    row = await routing.record_transfer_feedback(
        session, clue_id=clue_id, transfer_id=transfer_id, principal=principal
    )
    return _transfer_out(row)


class TransferRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_unit_id: str = Field(max_length=36)
    reason: str = Field(min_length=1, max_length=5000)


class TransferDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    reason: str = Field(min_length=1, max_length=5000)
    document_number: str | None = Field(default=None, max_length=100)
    expected_feedback_on: date | None = None


class TransferRequestOut(BaseModel):
    id: str
    clue_id: str
    requester_id: str
    to_unit_id: str
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


@router.post(
    "/clues/{clue_id}/transfer-requests",
    summary="Ask for a clue to go to another unit",
    status_code=201,
    response_model=TransferRequestOut,
    responses={**ERRORS, **NOT_FOUND, 409: {"description": "A request for this clue is already pending"}},
)
async def request_transfer(
    clue_id: str,
    body: TransferRequestIn,
    principal: Annotated[Principal, authorized(Action.request_transfer)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TransferRequestOut:
    """The clue's handler asks for it to go to another unit (the reason is sealed). Audited."""
    row = await transfer_requests.request_transfer(
        session,
        clue_id=clue_id,
        to_unit_id=body.to_unit_id,
        reason=body.reason,
        principal=principal,
        runtime=runtime,
    )
    return TransferRequestOut(**transfer_requests.summary(row))


@router.get(
    "/transfer-requests",
    summary="Transfer requests awaiting a decision",
    response_model=list[TransferRequestOut],
    responses=ERRORS,
)
async def pending_transfer_requests(
    principal: Annotated[Principal, authorized(Action.decide_clue)], session: SessionDep
) -> list[TransferRequestOut]:
    """Requests waiting for a supervisor's decision, oldest first."""
    return [
        TransferRequestOut(**transfer_requests.summary(r))
        for r in await transfer_requests.list_pending(session)
    ]


@router.post(
    "/transfer-requests/{request_id}/decision",
    summary="Approve or refuse a transfer request",
    response_model=TransferRequestOut,
    responses={**ERRORS, 404: {"description": "No such request"}, **CONFLICT},
)
async def decide_transfer_request(
    request_id: str,
    body: TransferDecisionIn,
    principal: Annotated[Principal, authorized(Action.decide_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TransferRequestOut:
    """Approve (the transfer step is applied, with recusal and the status rules) or refuse. Audited."""
    row = await handoff_service.decide_transfer_request(
        session,
        request_id=request_id,
        decision=transfer_requests.Decision(
            approve=body.approve,
            reason=body.reason,
            document_number=body.document_number,
            expected_feedback_on=body.expected_feedback_on,
        ),
        principal=principal,
        runtime=runtime,
    )
    return TransferRequestOut(**transfer_requests.summary(row))
