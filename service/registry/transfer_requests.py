"""Transfer requests: the handler of a clue asks for it to go to another unit; a supervisor approves (the
transfer step is applied, with its recusal and status rules) or refuses. Reasons are sealed with the case
key; every request and decision is audited in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.auth.models import Unit
from service.auth.permissions import Action, is_allowed
from service.auth.service import Principal
from service.platform.db import new_id
from service.platform.errors import Conflict, Forbidden, Invalid, NotFound
from service.platform.runtime import Configured
from service.platform.timeutil import utcnow
from service.registry import lifecycle
from service.registry.models import TransferRequest
from service.registry.service import get_visible_clue

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"


@dataclass(frozen=True)
class Decision:
    approve: bool
    reason: str
    document_number: str | None = None
    expected_feedback_on: date | None = None


async def request_transfer(
    session: AsyncSession,
    *,
    clue_id: str,
    to_unit_id: str,
    reason: str,
    principal: Principal,
    runtime: Configured,
) -> TransferRequest:
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    if clue.assignee_id != principal.staff_id and not is_allowed(principal.roles, Action.decide_clue):
        raise Forbidden("只有承办人可以申请移交", message_en="only the clue's handler may ask for a transfer")
    if not reason.strip():
        raise Invalid("请填写理由", message_en="a reason is required")
    if await session.get(Unit, to_unit_id) is None:
        raise NotFound("单位不存在", message_en="unit not found")
    pending = await session.scalar(
        select(TransferRequest.id).where(
            TransferRequest.clue_id == clue.id, TransferRequest.status == PENDING
        )
    )
    if pending:
        raise Conflict("该线索已有待审批的移交申请", message_en="a transfer request for this clue is pending")
    row_id = new_id()
    row = TransferRequest(
        id=row_id,
        clue_id=clue.id,
        requester_id=principal.staff_id,
        to_unit_id=to_unit_id,
        reason=await lifecycle.seal(
            session, runtime, clue.id, "transfer_requests", row_id, "reason", {"reason": reason}
        ),
        status=PENDING,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.transfer_requested",
        object_type="clue",
        object_id=clue.id,
        details={"transfer_request_id": row_id, "to_unit_id": to_unit_id},
    )
    return row


async def list_pending(session: AsyncSession) -> list[TransferRequest]:
    query = (
        select(TransferRequest).where(TransferRequest.status == PENDING).order_by(TransferRequest.created_at)
    )
    return list((await session.execute(query)).scalars())


async def decide(
    session: AsyncSession, *, request_id: str, decision: Decision, principal: Principal, runtime: Configured
) -> TransferRequest:
    row = await session.get(TransferRequest, request_id, with_for_update=True)
    if row is None:
        raise NotFound("移交申请不存在", message_en="transfer request not found")
    if row.status != PENDING:
        raise Conflict("该申请已处理", message_en="this request was already decided")
    if not decision.reason.strip():
        raise Invalid("请填写理由", message_en="a reason is required")
    if decision.approve:
        await lifecycle.apply_transition(
            session,
            clue_id=row.clue_id,
            request=lifecycle.TransitionRequest(
                action="transfer",
                reason=decision.reason,
                to_unit_id=row.to_unit_id,
                document_number=decision.document_number,
                expected_feedback_on=decision.expected_feedback_on,
            ),
            principal=principal,
            runtime=runtime,
        )
    row.status = APPROVED if decision.approve else REFUSED
    row.decided_by = principal.staff_id
    row.decided_at = utcnow()
    row.decision_reason = await lifecycle.seal(
        session,
        runtime,
        row.clue_id,
        "transfer_requests",
        row.id,
        "decision_reason",
        {"reason": decision.reason},
    )
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action=f"clue.transfer_request_{row.status}",
        object_type="clue",
        object_id=row.clue_id,
        details={"transfer_request_id": row.id},
    )
    return row


def summary(row: TransferRequest) -> dict[str, str | datetime | None]:
    """What staff see in lists: ids, status and times (the reasons stay sealed)."""
    return {
        "id": row.id,
        "clue_id": row.clue_id,
        "requester_id": row.requester_id,
        "to_unit_id": row.to_unit_id,
        "status": row.status,
        "created_at": row.created_at,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
    }


@dataclass(frozen=True)
class PendingView:
    """A pending request for a supervisor to decide: its reason opened, or None where it cannot be: sealed
    to a clue this supervisor holds no key to (recused), or ``predates`` (a clue registered before
    compartments while this server holds no case key: ``compartments.items.PREDATES_COMPARTMENTS``)."""

    row: TransferRequest
    reason: str | None
    predates: tuple[str, str] | None = None


async def pending_with_reasons(
    session: AsyncSession, *, principal: Principal, runtime: Configured
) -> list[PendingView]:
    """The pending requests with their (sealed) reasons opened, for a supervisor to decide; audited. One row
    that cannot be opened is listed as such, never refusing the others."""
    if not is_allowed(principal.roles, Action.decide_clue):
        raise Forbidden("您的角色无权进行此操作", message_en="your role may not decide_clue")
    rows = await list_pending(session)
    opened = []
    for row in rows:
        opener = await lifecycle.item_opener(session, runtime, clue_id=row.clue_id, principal=principal)
        try:
            data, predates = opener.open_listed(row.reason, f"transfer_requests/{row.id}/reason")
        except Forbidden:
            opened.append(PendingView(row, None))  # sealed to a clue this supervisor holds no key to
            continue
        opened.append(PendingView(row, json.loads(data)["reason"] if data is not None else None, predates))
    if rows:
        await audit_service.record(
            session,
            actor=principal.actor,
            action="transfer_requests.read",
            object_type="registry",
            object_id="transfer_requests",
            details={"transfer_request_ids": [row.id for row in rows]},
        )
    return opened
