"""The clue lifecycle: an explicit table of allowed transitions and the one function that applies them.

registered → triaged → transferred (to a handling unit) → verifying, or triaged → verifying (handled here);
verifying → disposed (谈话函询 / 初步核实 / 暂存待查 / 予以了结) or sent_on (移送审查调查 / 移交
another organ),
both only with a recorded collective decision and an approver; disposed or sent_on → concluded (finding,
summary, feedback); concluded → archived. A shelved clue (暂存待查) reopens to verifying. An out-of-scope
report is referred on (12388, petitions office, 12345, a court) from registered or triaged.

Invariants: every transition writes a ``clue_transitions`` row and an audit entry in the caller's
transaction; free text (reasons, summaries, feedback, the clearing record, a knowingly-false note) is sealed
with the case key; the submitter's identity envelope is never opened here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth import service as auth_service
from service.auth.models import Unit
from service.auth.permissions import Action, Role, is_allowed
from service.auth.service import Principal
from service.compartments import items
from service.platform.db import new_id
from service.platform.errors import Conflict, Forbidden, Invalid, NotFound
from service.platform.runtime import Configured, Sealing
from service.platform.timeutil import LOCAL, as_utc, utcnow
from service.registry import deadlines, keyholders, recusal, routing
from service.registry.deadlines import Stage
from service.registry.models import Clue, ClueState, ClueTransfer, ClueTransition, DeadlineRule
from service.registry.service import assign_clue, enforce_recusal, get_visible_clue


class Status(StrEnum):
    registered = "registered"  # 登记
    triaged = "triaged"  # 分办
    transferred = "transferred"  # 移交 to a handling unit
    verifying = "verifying"  # 核查
    disposed = "disposed"  # 处置 by one of the four methods
    sent_on = "sent_on"  # 移送审查调查 / 移交 another organ
    referred = "referred"  # out of scope, passed on
    concluded = "concluded"  # 办结
    archived = "archived"  # 归档


STATUS_NAMES = {
    Status.registered: "已登记",
    Status.triaged: "已分办",
    Status.transferred: "已移交",
    Status.verifying: "核查中",
    Status.disposed: "已处置",
    Status.sent_on: "已移送",
    Status.referred: "已转出",
    Status.concluded: "已办结",
    Status.archived: "已归档",
}

DISPOSAL_METHODS = {
    "inquiry": "谈话函询",
    "verification": "初步核实",
    "shelve": "暂存待查",
    "close": "予以了结",
}
SEND_ON_KINDS = {"investigation": "移送审查调查", "organ": "移交其他机关"}
FINDINGS = {"substantiated": "属实", "partly": "部分属实", "unfounded": "不属实", "no_evidence": "查无实据"}
REFERRAL_TARGETS = {
    "12388": ("纪检监察机关（12388举报平台）", "discipline inspection commission (12388)"),
    "petitions": ("信访部门", "the petitions office"),
    "12345": ("12345政务服务便民热线", "the 12345 government service hotline"),
    "court": ("人民法院（诉讼服务中心，12368热线）", "the people's court (litigation service centre, 12368)"),
}

# Statuses whose deadline is running (a shelved clue waits for information: no clock).
OPEN_STATUSES = (
    Status.registered,
    Status.triaged,
    Status.transferred,
    Status.verifying,
    Status.disposed,
    Status.sent_on,
)


class Kind(StrEnum):
    decide = "decide"  # supervisors: routing the clue and closing decisions
    handle = "handle"  # the assigned investigator or a supervisor: the work on it


@dataclass(frozen=True)
class Transition:
    sources: frozenset[Status]
    target: Status
    kind: Kind
    needs_approval: bool = False


TRANSITIONS: dict[str, Transition] = {
    "triage": Transition(frozenset({Status.registered}), Status.triaged, Kind.decide),
    "refer": Transition(frozenset({Status.registered, Status.triaged}), Status.referred, Kind.decide),
    "transfer": Transition(frozenset({Status.triaged}), Status.transferred, Kind.decide),
    "accept": Transition(frozenset({Status.triaged, Status.transferred}), Status.verifying, Kind.handle),
    "dispose": Transition(frozenset({Status.verifying}), Status.disposed, Kind.handle, needs_approval=True),
    "send_on": Transition(frozenset({Status.verifying}), Status.sent_on, Kind.handle, needs_approval=True),
    "reopen": Transition(frozenset({Status.disposed}), Status.verifying, Kind.decide),
    "conclude": Transition(
        frozenset({Status.disposed, Status.sent_on}), Status.concluded, Kind.handle, needs_approval=True
    ),
    "archive": Transition(frozenset({Status.concluded, Status.referred}), Status.archived, Kind.decide),
}


def allowed_actions(status: str, disposal_method: str | None = None) -> list[str]:
    """The transitions open from ``status`` (what the console offers)."""
    names = []
    for name, spec in TRANSITIONS.items():
        if status not in spec.sources:
            continue
        if name == "reopen" and disposal_method != "shelve":
            continue
        if name == "conclude" and status == Status.disposed and disposal_method == "shelve":
            continue
        names.append(name)
    return names


@dataclass(frozen=True)
class TransitionRequest:
    action: str
    reason: str
    approver_id: str | None = None
    decision_on: date | None = None  # the collective decision's date
    method: str | None = None  # dispose
    kind: str | None = None  # send_on: investigation | organ
    target: str | None = None  # refer: a REFERRAL_TARGETS code; send_on organ: its name
    to_unit_id: str | None = None  # transfer
    document_number: str | None = None
    expected_feedback_on: date | None = None
    finding: str | None = None  # conclude
    summary: str | None = None
    feedback: str | None = None
    clearing_record: str | None = None  # 澄清正名, only with 不属实
    false_report_note: str | None = None  # looks knowingly false (诬告), only with 不属实
    attachment_ids: tuple[str, ...] = field(default_factory=tuple)
    route: bool = True  # triage: apply the routing rules
    confirm_recusal: bool = False  # transfer: the supervisor confirms where the accused unit only resembles


def _invalid(zh: str, en: str) -> Invalid:
    return Invalid(zh, message_en=en)


async def seal(
    session: AsyncSession,
    runtime: Configured,
    clue_id: str,
    table: str,
    row_id: str,
    name: str,
    value: dict[str, Any],
) -> bytes:
    """A staff-written item about a clue, sealed to the clue's own key (its readers only) where it has one,
    else to the case key (``compartments.items``)."""
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return await seal_bytes(session, runtime, clue_id, data, f"{table}/{row_id}/{name}")


async def seal_bytes(
    session: AsyncSession, runtime: Sealing, clue_id: str, data: bytes, binding: str
) -> bytes:
    return await session.run_sync(
        lambda s: items.seal_item(s, runtime.keys, clue_id=clue_id, data=data, binding=binding)
    )


async def item_opener(
    session: AsyncSession, runtime: Sealing, *, clue_id: str, principal: Principal
) -> items.ItemOpener:
    """Opens a clue's sealed items for this request (its own key derived once; see ``seal``)."""
    return await session.run_sync(
        lambda s: items.item_opener(s, runtime.keys, clue_id=clue_id, unlocked=principal.unlocked)
    )


async def load_rules(session: AsyncSession) -> list[deadlines.RuleRow]:
    rows = (await session.execute(select(DeadlineRule))).scalars()
    return [deadlines.RuleRow(r.stage, r.source, r.category, r.working_days, r.months) for r in rows]


async def stage_due(session: AsyncSession, clue: Clue, stage: Stage, start: datetime) -> datetime:
    limit = deadlines.pick_limit(
        await load_rules(session),
        stage=stage,
        source=clue.source,
        categories=tuple(c.category for c in clue.categories),
    )
    return limit.due(start)


async def get_state(session: AsyncSession, clue_id: str) -> ClueState:
    state = await session.get(ClueState, clue_id)
    if state is None:
        state = ClueState(
            clue_id=clue_id, key_clue=False, leader_takes_case=False, difficult=False, cleared=False
        )
        session.add(state)
    return state


async def lock_visible_clue(session: AsyncSession, *, clue_id: str, principal: Principal) -> Clue:
    """The clue, row-locked for the rest of the transaction, if the caller may see it (else 404)."""
    query = select(Clue).where(Clue.id == clue_id).options(selectinload(Clue.categories)).with_for_update()
    clue = await session.scalar(query)
    if clue is not None and (
        is_allowed(principal.roles, Action.read_any_clue)
        or (is_allowed(principal.roles, Action.read_assigned_clue) and clue.assignee_id == principal.staff_id)
    ):
        return clue
    raise NotFound("线索不存在", message_en="clue not found")


def _authorise(principal: Principal, clue: Clue, spec: Transition) -> None:
    if spec.kind is Kind.decide:
        if not is_allowed(principal.roles, Action.decide_clue):
            raise Forbidden("您的角色无权进行此操作", message_en="your role may not decide_clue")
        return
    if is_allowed(principal.roles, Action.decide_clue):
        return
    if not (is_allowed(principal.roles, Action.handle_clue) and clue.assignee_id == principal.staff_id):
        raise Forbidden(
            "只有承办人或审核人员可以办理此线索", message_en="only the handler or a supervisor may do this"
        )


async def _check_approver(session: AsyncSession, request: TransitionRequest, principal: Principal) -> None:
    if not request.approver_id or request.decision_on is None:
        raise _invalid(
            "此操作须经集体研究并由审批人批准：请填写审批人和集体研究日期",
            "this step needs a recorded collective decision: give approver_id and decision_on",
        )
    if request.approver_id == principal.staff_id:
        raise _invalid("审批人不能是经办人本人", "the approver cannot be the person recording the step")
    try:
        approver = await auth_service.get_staff(session, request.approver_id)
    except NotFound:
        raise _invalid("审批人不存在", "unknown approver") from None
    if approver.disabled or Role.supervisor not in {r.role for r in approver.roles}:
        raise _invalid("审批人必须是在岗的审核人员", "the approver must be an active supervisor")
    if request.decision_on > utcnow().astimezone(LOCAL).date():
        raise _invalid("集体研究日期不能晚于今天", "decision_on cannot be in the future")


def _local_end(day: date) -> datetime:
    return deadlines.end_of_local_day(day)


async def apply_transition(
    session: AsyncSession,
    *,
    clue_id: str,
    request: TransitionRequest,
    principal: Principal,
    runtime: Configured,
) -> ClueTransition:
    spec = TRANSITIONS.get(request.action)
    if spec is None:
        raise _invalid("未知的办理步骤", f"unknown transition {request.action!r}")
    if not request.reason.strip():
        raise _invalid("请填写理由", "a reason is required")
    clue = await lock_visible_clue(session, clue_id=clue_id, principal=principal)
    _authorise(principal, clue, spec)
    state = await get_state(session, clue.id)
    if clue.status not in spec.sources or request.action not in allowed_actions(
        clue.status, state.disposal_method
    ):
        raise Conflict(
            f"线索当前状态为「{STATUS_NAMES.get(clue.status, clue.status)}」，不能进行此操作",
            message_en=f"cannot {request.action} a clue in status {clue.status}",
        )
    if spec.needs_approval:
        await _check_approver(session, request, principal)

    now = utcnow()
    transition_id = new_id()
    sealed: dict[str, Any] = {"reason": request.reason}
    details: dict[str, Any] = {}
    previous = clue.status
    holders_before = (clue.assignee_id, clue.handling_unit_id)

    if request.action == "triage":
        clue.needs_triage = False
        labels = {c.category for c in clue.categories}
        # A report that is only out of scope runs on the referral limit (5 working days from receipt).
        stage = Stage.referral if labels == {"other"} else Stage.disposal
        clue.due_at = await stage_due(session, clue, stage, clue.received_at)
        if request.route and clue.assignee_id is None:
            fired = await routing.route_clue(session, clue=clue, state=state, sealing=runtime)
            details["routing_rule_id"] = fired
    elif request.action == "refer":
        if request.target not in REFERRAL_TARGETS:
            raise _invalid("转出去向无效", "target must be one of " + ", ".join(REFERRAL_TARGETS))
        limit_due = await stage_due(session, clue, Stage.referral, clue.received_at)
        session.add(
            ClueTransfer(
                id=new_id(),
                clue_id=clue.id,
                kind="referral",
                target=request.target,
                document_number=request.document_number,
                transferred_at=now,
                created_by=principal.actor,
            )
        )
        state.referral_target, state.referred_at = request.target, now
        if clue.real_name and state.acceptance_notice_at is None:
            state.acceptance_notice_at = now  # the receipt tells the reporter where to go: that is the notice
        details.update(target=request.target, late=now > limit_due)
    elif request.action == "transfer":
        if not request.to_unit_id or not request.document_number:
            raise _invalid("移交须填写承办单位和文号", "a transfer needs to_unit_id and document_number")
        if await session.get(Unit, request.to_unit_id) is None:
            raise _invalid("承办单位不存在", "unknown unit")
        if await enforce_recusal(
            session,
            clue=clue,
            assignee_unit_id=request.to_unit_id,
            keys=runtime.keys,
            words_key=runtime.lookup_key(recusal.WORDS_KEY_LABEL),
            confirmed=request.confirm_recusal,
        ):
            details["recusal_confirmed"] = True
        expected = (
            _local_end(request.expected_feedback_on)
            if request.expected_feedback_on
            else await stage_due(session, clue, Stage.transfer_feedback, now)
        )
        transfer = ClueTransfer(
            id=new_id(),
            clue_id=clue.id,
            kind="unit",
            to_unit_id=request.to_unit_id,
            document_number=request.document_number,
            transferred_at=now,
            expected_feedback_at=expected,
            created_by=principal.actor,
        )
        session.add(transfer)
        details.update(
            transfer_id=transfer.id, to_unit_id=request.to_unit_id, previous_unit_id=clue.handling_unit_id
        )
        clue.handling_unit_id = request.to_unit_id
        if clue.assignee_id is not None:
            details["previous_assignee_id"] = clue.assignee_id
            clue.assignee_id = None
        clue.due_at = expected
    elif request.action == "accept":
        clue.due_at = await stage_due(session, clue, Stage.disposal, clue.received_at)
    elif request.action == "dispose":
        if request.method not in DISPOSAL_METHODS:
            raise _invalid("处置方式无效", "method must be one of " + ", ".join(DISPOSAL_METHODS))
        state.disposal_method, state.disposed_at, state.approver_id = request.method, now, request.approver_id
        stage = {"verification": Stage.verification, "inquiry": Stage.inquiry}.get(request.method)
        if stage is not None:
            clue.due_at = await stage_due(session, clue, stage, now)
        details["method"] = request.method
    elif request.action == "send_on":
        if request.kind not in SEND_ON_KINDS or not request.target or not request.document_number:
            raise _invalid(
                "移送须填写类型（investigation/organ）、接收机关和文号",
                "send_on needs kind (investigation|organ), target and document_number",
            )
        expected = (
            _local_end(request.expected_feedback_on)
            if request.expected_feedback_on
            else await stage_due(session, clue, Stage.transfer_feedback, now)
        )
        session.add(
            ClueTransfer(
                id=new_id(),
                clue_id=clue.id,
                kind=request.kind,
                target=request.target[:100],
                document_number=request.document_number,
                transferred_at=now,
                expected_feedback_at=expected,
                created_by=principal.actor,
            )
        )
        state.disposal_method, state.disposed_at, state.approver_id = request.kind, now, request.approver_id
        clue.due_at = expected
        details["kind"] = request.kind
    elif request.action == "reopen":
        details["previous_method"] = state.disposal_method
        state.disposal_method = None
        clue.due_at = await stage_due(session, clue, Stage.disposal, now)
    elif request.action == "conclude":
        if request.finding not in FINDINGS:
            raise _invalid("办理结果无效", "finding must be one of " + ", ".join(FINDINGS))
        if not (request.summary or "").strip() or not (request.feedback or "").strip():
            raise _invalid("办结须填写办理情况摘要和反馈内容", "conclude needs a summary and the feedback")
        if (request.clearing_record or request.false_report_note) and request.finding != "unfounded":
            raise _invalid(
                "澄清正名和诬告说明只能用于「不属实」的结果",
                "a clearing record or false-report note goes only with the finding unfounded",
            )
        sealed.update(summary=request.summary, feedback=request.feedback)
        if request.clearing_record:
            sealed["clearing_record"] = request.clearing_record
        if request.false_report_note:
            # A note on the report only: it never opens, names or points at the reporter's identity.
            sealed["false_report_note"] = request.false_report_note
        state.finding, state.concluded_at, state.feedback_at = request.finding, now, now
        state.cleared = bool(request.clearing_record)
        state.approver_id = request.approver_id
        details.update(finding=request.finding, clearing_record=bool(request.clearing_record))
    clue.status = spec.target.value
    state.stage_started_at = now
    if (clue.assignee_id, clue.handling_unit_id) != holders_before:  # routed or transferred: rewrap
        await session.flush()
        rewrapped = await session.run_sync(
            lambda s: keyholders.rewrap(
                s,
                clue_id=clue.id,
                unlocked=principal.unlocked,
                assignee_id=clue.assignee_id,
                previous_assignee_id=holders_before[0],
                unit_id=clue.handling_unit_id,
            )
        )
        if rewrapped is not None:
            details["key_wrapped"] = rewrapped

    transition = ClueTransition(
        id=transition_id,
        clue_id=clue.id,
        action=request.action,
        from_status=previous,
        to_status=clue.status,
        actor=principal.actor,
        at=now,
        approver_id=request.approver_id if spec.needs_approval else None,
        decision_on=_local_end(request.decision_on) if spec.needs_approval and request.decision_on else None,
        details=json.dumps(
            {**details, "attachment_ids": list(request.attachment_ids)}, ensure_ascii=False, sort_keys=True
        ),
        sealed=await seal(session, runtime, clue.id, "clue_transitions", transition_id, "sealed", sealed),
    )
    session.add(transition)
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action=f"clue.{request.action}",
        object_type="clue",
        object_id=clue.id,
        details={
            "transition_id": transition_id,
            "from": previous,
            "to": clue.status,
            "approver_id": transition.approver_id,
            "attachments": len(request.attachment_ids),
            **{k: v for k, v in details.items() if k != "attachment_ids"},
        },
    )
    return transition


async def record_note_transition(
    session: AsyncSession,
    *,
    clue: Clue,
    action: str,
    reason: str,
    details: dict[str, Any],
    principal: Principal,
    runtime: Configured,
) -> ClueTransition:
    """A history entry that does not change the status (reassignment, supervision)."""
    transition_id = new_id()
    transition = ClueTransition(
        id=transition_id,
        clue_id=clue.id,
        action=action,
        from_status=clue.status,
        to_status=clue.status,
        actor=principal.actor,
        at=utcnow(),
        details=json.dumps(details, ensure_ascii=False, sort_keys=True),
        sealed=await seal(
            session, runtime, clue.id, "clue_transitions", transition_id, "sealed", {"reason": reason}
        ),
    )
    session.add(transition)
    await session.flush()
    return transition


async def add_note(
    session: AsyncSession, *, clue_id: str, text: str, principal: Principal, runtime: Configured
) -> ClueTransition:
    """A working note in the clue's history (sealed); the handler of the clue or a supervisor."""
    if not text.strip():
        raise _invalid("请填写内容", "the note is empty")
    clue = await lock_visible_clue(session, clue_id=clue_id, principal=principal)
    _authorise(principal, clue, Transition(frozenset(), Status(clue.status), Kind.handle))
    row = await record_note_transition(
        session, clue=clue, action="note", reason=text, details={}, principal=principal, runtime=runtime
    )
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.note_added",
        object_type="clue",
        object_id=clue.id,
        details={"transition_id": row.id},
    )
    return row


@dataclass(frozen=True)
class HistoryEntry:
    transition: ClueTransition
    details: dict[str, Any]
    sealed: dict[str, Any]


async def history(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Configured
) -> list[HistoryEntry]:
    """A clue's whole history with its sealed texts opened; the read is audited."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = (
        await session.execute(
            select(ClueTransition)
            .where(ClueTransition.clue_id == clue.id)
            .order_by(ClueTransition.at, ClueTransition.id)
        )
    ).scalars()
    opener = await item_opener(session, runtime, clue_id=clue.id, principal=principal)
    entries = []
    for row in rows:
        opened = (
            json.loads(opener.open(row.sealed, f"clue_transitions/{row.id}/sealed")) if row.sealed else {}
        )
        entries.append(HistoryEntry(row, json.loads(row.details or "{}"), opened))
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.history_read",
        object_type="clue",
        object_id=clue.id,
        details={"entries": len(entries)},
    )
    return entries


# --- What the reporter sees -------------------------------------------------------------------------


def public_status(clue: Clue, state: ClueState | None = None) -> dict[str, Any]:
    """Plain-words status for the reporter's receipt page. Never names a handler, a unit, a finding's
    detail or anything about the accused; if the report was referred, says where to go."""
    status = clue.status
    referred_to = None
    if status in (Status.registered, Status.triaged):
        text, text_en = "您的举报已登记，正在分办。", "Your report is registered and being assigned."
    elif status in (Status.transferred, Status.verifying, Status.disposed, Status.sent_on):
        text, text_en = "您的举报正在办理中。", "Your report is being handled."
        if status == Status.disposed and state is not None and state.disposal_method == "shelve":
            text, text_en = (
                "您的举报已登记在案，待有新的情况后继续办理。如有补充材料，欢迎通过查询码补充。",
                "Your report is on file pending more information; you can add material with your receipt.",
            )
    elif status in (Status.concluded, Status.archived):
        text, text_en = "您的举报已办结。", "Your report has been concluded."
        if clue.real_name:
            text += "办理结果将按规定向您反馈。"
            text_en += " You will be told the outcome as the rules provide."
    elif status == Status.referred:
        code = state.referral_target if state is not None else None
        name_zh, name_en = REFERRAL_TARGETS.get(code or "", ("有关部门", "the competent body"))
        when = (
            as_utc(state.referred_at).astimezone(LOCAL).date().isoformat()
            if state and state.referred_at
            else None
        )
        text = f"您反映的问题不属于本平台受理范围，已转交{name_zh}。您也可以直接向{name_zh}反映。"
        text_en = (
            f"Your report is outside this platform's remit and was passed to {name_en}; "
            "you may contact them directly."
        )
        referred_to = {"code": code, "name": name_zh, "name_en": name_en, "on": when}
    else:
        text, text_en = "您的举报已收到。", "Your report has been received."
    return {"status": status, "text": text, "text_en": text_en, "referred_to": referred_to}


async def public_status_for(session: AsyncSession, clue_id: str) -> dict[str, Any]:
    clue = await session.get(Clue, clue_id)
    if clue is None:
        raise NotFound("查询码无效", message_en="unknown receipt")
    return public_status(clue, await session.get(ClueState, clue_id))


async def reassign_clue(
    session: AsyncSession,
    *,
    clue_id: str,
    assignee_id: str,
    reason: str,
    principal: Principal,
    runtime: Configured,
    confirm_recusal: bool = False,
) -> Clue:
    """Manual reassignment with a (sealed) reason; recusal as for every assignment."""
    if not reason.strip():
        raise Invalid("请填写改派理由", message_en="a reason is required")
    previous = (await lock_visible_clue(session, clue_id=clue_id, principal=principal)).assignee_id
    clue = await assign_clue(
        session,
        clue_id=clue_id,
        assignee_id=assignee_id,
        principal=principal,
        runtime=runtime,
        confirm_recusal=confirm_recusal,
    )
    await record_note_transition(
        session,
        clue=clue,
        action="reassign",
        reason=reason,
        details={
            "assignee_id": assignee_id,
            "previous_assignee_id": previous,
            "unit_id": clue.handling_unit_id,
        },
        principal=principal,
        runtime=runtime,
    )
    return clue
