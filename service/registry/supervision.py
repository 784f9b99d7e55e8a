"""Key-clue supervision (重点线索督办), progress requests and reports, consultations on difficult clues
(疑难线索会商), and the overdue reminder notices (催办单).

Free text (a request's note, a progress report, a consultation's participants, opinions and conclusion) is
sealed with the case key; the plain columns are dates, ids and counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth import service as auth_service
from service.auth.permissions import Action, Role, is_allowed
from service.auth.service import Principal
from service.compartments.items import ItemOpener
from service.platform.db import new_id
from service.platform.errors import Conflict, Invalid, NotFound
from service.platform.runtime import Configured
from service.platform.timeutil import LOCAL, utcnow
from service.registry import deadlines, lifecycle
from service.registry.models import (
    Clue,
    ClueReminder,
    ClueState,
    Consultation,
    FollowUp,
    Objection,
    ProgressRequest,
)
from service.registry.service import get_visible_clue


def _open(opener: ItemOpener, data: bytes | None, table: str, row_id: str, name: str) -> dict[str, Any]:
    return json.loads(opener.open(data, f"{table}/{row_id}/{name}")) if data else {}


async def set_supervision(
    session: AsyncSession,
    *,
    clue_id: str,
    key_clue: bool,
    leader_id: str | None,
    leader_takes_case: bool,
    reason: str,
    principal: Principal,
    runtime: Configured,
) -> ClueState:
    """Mark (or unmark) a key clue and name its supervising leader; 包案 when the leader takes it on."""
    clue = await lifecycle.lock_visible_clue(session, clue_id=clue_id, principal=principal)
    if not reason.strip():
        raise Invalid("请填写理由", message_en="a reason is required")
    if key_clue and not leader_id:
        raise Invalid("重点线索须指定督办领导", message_en="a key clue needs a supervising leader")
    if leader_takes_case and not key_clue:
        raise Invalid("包案只适用于重点线索", message_en="a leader takes on only a key clue")
    if leader_id:
        try:
            leader = await auth_service.get_staff(session, leader_id)
        except NotFound:
            raise Invalid("督办领导不存在", message_en="unknown leader") from None
        if leader.disabled or Role.supervisor not in {r.role for r in leader.roles}:
            raise Invalid(
                "督办领导必须是在岗的审核人员", message_en="the leader must be an active supervisor"
            )
    state = await lifecycle.get_state(session, clue.id)
    state.key_clue, state.leader_takes_case = key_clue, leader_takes_case
    state.supervising_leader_id = leader_id if key_clue else None
    details = {
        "key_clue": key_clue,
        "leader_id": state.supervising_leader_id,
        "leader_takes_case": leader_takes_case,
    }
    await lifecycle.record_note_transition(
        session,
        clue=clue,
        action="supervision",
        reason=reason,
        details=details,
        principal=principal,
        runtime=runtime,
    )
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.supervision",
        object_type="clue",
        object_id=clue.id,
        details=details,
    )
    return state


async def request_progress(
    session: AsyncSession, *, clue_id: str, due_on: date, note: str, principal: Principal, runtime: Configured
) -> ProgressRequest:
    """An interim deadline: the handler reports progress by ``due_on``."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    if clue.status not in lifecycle.OPEN_STATUSES:
        raise Conflict("线索已办结或已转出，无需督办", message_en="the clue is no longer open")
    if due_on < utcnow().astimezone(LOCAL).date():
        raise Invalid("阶段期限不能早于今天", message_en="due_on cannot be in the past")
    row_id = new_id()
    row = ProgressRequest(
        id=row_id,
        clue_id=clue.id,
        requested_by=principal.actor,
        requested_at=utcnow(),
        due_at=deadlines.end_of_local_day(due_on),
        request=await lifecycle.seal(
            session, runtime, clue.id, "clue_progress_requests", row_id, "request", {"note": note}
        ),
    )
    session.add(row)
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.progress_requested",
        object_type="clue",
        object_id=clue.id,
        details={"request_id": row_id, "due_on": due_on.isoformat()},
    )
    return row


async def report_progress(
    session: AsyncSession, *, request_id: str, report: str, principal: Principal, runtime: Configured
) -> ProgressRequest:
    row = await session.get(ProgressRequest, request_id)
    if row is None:
        raise NotFound("督办事项不存在", message_en="progress request not found")
    clue = await get_visible_clue(session, clue_id=row.clue_id, principal=principal)  # 404 if not his
    if row.reported_at is not None:
        raise Conflict("该督办事项已报告", message_en="progress already reported")
    if not report.strip():
        raise Invalid("请填写进展情况", message_en="the report is empty")
    row.reported_at, row.reported_by = utcnow(), principal.actor
    row.report = await lifecycle.seal(
        session, runtime, clue.id, "clue_progress_requests", row.id, "report", {"report": report}
    )
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.progress_reported",
        object_type="clue",
        object_id=clue.id,
        details={"request_id": row.id, "late": row.reported_at > row.due_at},
    )
    return row


async def list_progress(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Configured
) -> list[dict[str, Any]]:
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = (
        await session.execute(
            select(ProgressRequest)
            .where(ProgressRequest.clue_id == clue.id)
            .order_by(ProgressRequest.requested_at)
        )
    ).scalars()
    opener = await lifecycle.item_opener(session, runtime, clue_id=clue.id, principal=principal)
    out = []
    for row in rows:
        out.append(
            {
                "id": row.id,
                "requested_by": row.requested_by,
                "requested_at": row.requested_at,
                "due_at": row.due_at,
                "note": _open(opener, row.request, "clue_progress_requests", row.id, "request").get("note"),
                "reported_at": row.reported_at,
                "reported_by": row.reported_by,
                "report": _open(opener, row.report, "clue_progress_requests", row.id, "report").get("report"),
                "overdue": row.reported_at is None and utcnow() > row.due_at,
            }
        )
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.progress_read",
        object_type="clue",
        object_id=clue.id,
        details={"entries": len(out)},
    )
    return out


@dataclass(frozen=True)
class ConsultationInput:
    held_on: date
    participants: list[str]
    opinions: list[str]
    conclusion: str


async def record_consultation(
    session: AsyncSession, *, clue_id: str, data: ConsultationInput, principal: Principal, runtime: Configured
) -> Consultation:
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    if len([p for p in data.participants if p.strip()]) < 2:
        raise Invalid("会商至少需要两名参加人", message_en="a consultation needs at least two participants")
    if not data.conclusion.strip():
        raise Invalid("请填写会商结论", message_en="the conclusion is empty")
    if data.held_on > utcnow().astimezone(LOCAL).date():
        raise Invalid("会商日期不能晚于今天", message_en="held_on cannot be in the future")
    row_id = new_id()
    row = Consultation(
        id=row_id,
        clue_id=clue.id,
        held_on=deadlines.end_of_local_day(data.held_on),
        participant_count=len(data.participants),
        recorded_by=principal.actor,
        recorded_at=utcnow(),
        record=await lifecycle.seal(
            session,
            runtime,
            clue.id,
            "clue_consultations",
            row_id,
            "record",
            {"participants": data.participants, "opinions": data.opinions, "conclusion": data.conclusion},
        ),
    )
    session.add(row)
    state = await lifecycle.get_state(session, clue.id)
    state.difficult = True
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.consultation_recorded",
        object_type="clue",
        object_id=clue.id,
        details={"consultation_id": row_id, "participants": len(data.participants)},
    )
    return row


async def list_consultations(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Configured
) -> list[dict[str, Any]]:
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = (
        await session.execute(
            select(Consultation).where(Consultation.clue_id == clue.id).order_by(Consultation.held_on)
        )
    ).scalars()
    opener = await lifecycle.item_opener(session, runtime, clue_id=clue.id, principal=principal)
    out = [
        {
            "id": r.id,
            "held_on": r.held_on.astimezone(LOCAL).date(),
            "recorded_by": r.recorded_by,
            **_open(opener, r.record, "clue_consultations", r.id, "record"),
        }
        for r in rows
    ]
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.consultations_read",
        object_type="clue",
        object_id=clue.id,
        details={"entries": len(out)},
    )
    return out


# --- Overdue reminders (催办单) -----------------------------------------------------------------------


async def issue_overdue_reminders(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 1000
) -> int:
    """For each open clue past its deadline without a notice for that deadline, issue one. Content-free:
    the notice names the clue id, its deadline and the handling unit/handler. Overdue clues join the
    supervision list (see ``supervision_list``). Idempotent; a job runs it daily."""
    now = now or utcnow()
    missing = (
        select(Clue.id, Clue.status, Clue.due_at, Clue.handling_unit_id, Clue.assignee_id)
        .outerjoin(
            ClueReminder,
            and_(
                ClueReminder.clue_id == Clue.id,
                ClueReminder.due_at == Clue.due_at,
                ClueReminder.stage.is_(None),
            ),
        )
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .where(Clue.status.in_([s.value for s in lifecycle.OPEN_STATUSES]), Clue.due_at < now)
        .where(ClueReminder.id.is_(None))
        .where((ClueState.disposal_method.is_(None)) | (ClueState.disposal_method != "shelve"))
        .order_by(Clue.due_at)
        .limit(limit)
    )
    issued = 0
    for clue_id, status, due_at, unit_id, assignee_id in (await session.execute(missing)).all():
        reminder = ClueReminder(
            id=new_id(),
            clue_id=clue_id,
            status=status,
            due_at=due_at,
            issued_at=now,
            handling_unit_id=unit_id,
            assignee_id=assignee_id,
        )
        session.add(reminder)
        await session.flush()
        await audit_service.record(
            session,
            actor=audit_service.SYSTEM_ACTOR,
            action="clue.reminder_issued",
            object_type="clue",
            object_id=clue_id,
            details={"reminder_id": reminder.id, "status": status},
        )
        issued += 1
    return (
        issued
        + await issue_acceptance_reminders(session, now=now, limit=limit)
        + await issue_contact_reminders(session, now=now, limit=limit)
    )


# --- The acceptance notice for real-name reporters (15 working days from receipt) ----------------------


def acceptance_due(rules: list[deadlines.RuleRow], clue: Clue, categories: tuple[str, ...] = ()) -> datetime:
    limit = deadlines.pick_limit(
        rules, stage=deadlines.Stage.acceptance_notice, source=clue.source, categories=categories
    )
    return limit.due(clue.received_at)


async def issue_acceptance_reminders(session: AsyncSession, *, now: datetime, limit: int = 1000) -> int:
    """A 催办单 (stage ``acceptance_notice``) for each open real-name clue whose reporter has not been told
    within the limit whether the report was accepted. Idempotent (one per clue)."""
    rules = await lifecycle.load_rules(session)
    notified = select(ClueReminder.clue_id).where(
        ClueReminder.stage == deadlines.Stage.acceptance_notice.value
    )
    # No working-day limit ends before as many calendar days have passed: a cheap bound for the scan.
    shortest = min(
        [r.working_days for r in rules if r.stage == "acceptance_notice" and r.working_days] + [15]
    )
    candidates = (
        select(Clue)
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .where(Clue.real_name.is_(True), Clue.status.in_([s.value for s in lifecycle.OPEN_STATUSES]))
        .where(ClueState.acceptance_notice_at.is_(None))
        .where(Clue.received_at < now - timedelta(days=max(shortest - 4, 0)))
        .where(Clue.id.not_in(notified))
        .options(selectinload(Clue.categories))
        .order_by(Clue.received_at)
        .limit(limit)
    )
    issued = 0
    for clue in (await session.execute(candidates)).scalars().all():
        due = acceptance_due(rules, clue, tuple(c.category for c in clue.categories))
        if due >= now:
            continue
        await _issue_stage_reminder(session, clue, due, deadlines.Stage.acceptance_notice, now)
        issued += 1
    return issued


async def _issue_stage_reminder(
    session: AsyncSession, clue: Clue, due: datetime, stage: deadlines.Stage, now: datetime
) -> None:
    clash = await session.scalar(
        select(ClueReminder.id).where(ClueReminder.clue_id == clue.id, ClueReminder.due_at == due)
    )
    reminder = ClueReminder(
        id=new_id(),
        clue_id=clue.id,
        status=clue.status,
        # the (clue, due) pair is unique: a main deadline on the same second keeps its own notice
        due_at=due if clash is None else due - timedelta(seconds=1),
        issued_at=now,
        handling_unit_id=clue.handling_unit_id,
        assignee_id=clue.assignee_id,
        stage=stage.value,
    )
    session.add(reminder)
    await session.flush()
    await audit_service.record(
        session,
        actor=audit_service.SYSTEM_ACTOR,
        action="clue.reminder_issued",
        object_type="clue",
        object_id=clue.id,
        details={"reminder_id": reminder.id, "status": clue.status, "stage": stage.value},
    )


# --- Follow-up calls (回访) and objections (异议): each with its own limit ------------------------------


def contact_overdue() -> tuple[Select[tuple[str]], Select[tuple[str]]]:
    """The clues whose 回访 is overdue and not yet made, and those with an overdue objection still open
    (their 催办单 was issued): what the supervision list and the home page's count show."""
    follow_up = select(ClueReminder.clue_id).where(
        ClueReminder.stage == deadlines.Stage.follow_up.value,
        ClueReminder.clue_id.not_in(select(FollowUp.clue_id)),
    )
    objection = select(ClueReminder.clue_id).where(
        ClueReminder.stage == deadlines.Stage.objection.value,
        ClueReminder.clue_id.in_(select(Objection.clue_id).where(Objection.status.in_(OPEN_OBJECTION))),
    )
    return follow_up, objection


OPEN_OBJECTION = ("received", "reviewing")


def _categories(clue: Clue) -> tuple[str, ...]:
    return tuple(c.category for c in clue.categories)


def follow_up_due(rules: list[deadlines.RuleRow], clue: Clue, concluded_at: datetime) -> datetime:
    """A real-name reporter's 回访 is due this long after the finding (rule kind ``follow_up``)."""
    limit = deadlines.pick_limit(
        rules, stage=deadlines.Stage.follow_up, source=clue.source, categories=_categories(clue)
    )
    return limit.due(concluded_at)


def objection_due(rules: list[deadlines.RuleRow], clue: Clue, received_at: datetime) -> datetime:
    """An objection is answered this long after it was received (rule kind ``objection``)."""
    limit = deadlines.pick_limit(
        rules, stage=deadlines.Stage.objection, source=clue.source, categories=_categories(clue)
    )
    return limit.due(received_at)


async def issue_contact_reminders(session: AsyncSession, *, now: datetime, limit: int = 1000) -> int:
    """A 催办单 for each concluded real-name clue whose reporter had no 回访 within its limit (stage
    ``follow_up``, one per clue), and for each objection not answered within its limit (stage
    ``objection``, one per objection's deadline). Idempotent."""
    rules = await lifecycle.load_rules(session)
    issued = 0
    follow_up_reminded = select(ClueReminder.clue_id).where(
        ClueReminder.stage == deadlines.Stage.follow_up.value
    )
    pending = (
        select(Clue, ClueState.concluded_at)
        .join(ClueState, ClueState.clue_id == Clue.id)
        .where(Clue.real_name.is_(True), Clue.status == lifecycle.Status.concluded.value)
        .where(ClueState.concluded_at.is_not(None), ClueState.concluded_at < now)
        .where(Clue.id.not_in(select(FollowUp.clue_id)), Clue.id.not_in(follow_up_reminded))
        .options(selectinload(Clue.categories))
        .order_by(ClueState.concluded_at)
        .limit(limit)
    )
    for clue, concluded_at in (await session.execute(pending)).all():
        due = follow_up_due(rules, clue, concluded_at)
        if due < now:
            await _issue_stage_reminder(session, clue, due, deadlines.Stage.follow_up, now)
            issued += 1
    unanswered = (
        select(Objection.received_at, Clue)
        .join(Clue, Clue.id == Objection.clue_id)
        .where(Objection.status.in_(OPEN_OBJECTION), Objection.received_at < now)
        .options(selectinload(Clue.categories))
        .order_by(Objection.received_at)
        .limit(limit)
    )
    for received_at, clue in (await session.execute(unanswered)).all():
        due = objection_due(rules, clue, received_at)
        if due >= now:
            continue
        already = await session.scalar(
            select(ClueReminder.id).where(
                ClueReminder.clue_id == clue.id,
                ClueReminder.stage == deadlines.Stage.objection.value,
                ClueReminder.due_at.in_([due, due - timedelta(seconds=1)]),
            )
        )
        if already is None:
            await _issue_stage_reminder(session, clue, due, deadlines.Stage.objection, now)
            issued += 1
    return issued


async def record_acceptance_notice(
    session: AsyncSession, *, clue_id: str, principal: Principal, now: datetime | None = None
) -> dict[str, Any]:
    """Record that the real-name reporter was told whether the report was accepted (the handler or a
    supervisor; audited as ``clue.acceptance_notice`` with a ``late`` flag)."""
    now = now or utcnow()
    clue = await lifecycle.lock_visible_clue(session, clue_id=clue_id, principal=principal)
    if not clue.real_name:
        raise Conflict("匿名举报无需告知受理情况", message_en="an anonymous report has no acceptance notice")
    state = await lifecycle.get_state(session, clue.id)
    if state.acceptance_notice_at is not None:
        raise Conflict("已记录受理告知", message_en="the acceptance notice is already recorded")
    due = acceptance_due(
        await lifecycle.load_rules(session), clue, tuple(c.category for c in clue.categories)
    )
    state.acceptance_notice_at = now
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.acceptance_notice",
        object_type="clue",
        object_id=clue.id,
        details={"late": now > due},
    )
    return {"clue_id": clue.id, "acceptance_notice_at": now, "due_at": due, "late": now > due}


async def supervision_list(session: AsyncSession, *, principal: Principal) -> list[dict[str, Any]]:
    """Key clues and clues with a reminder notice, still open: what the leaders follow up."""
    if not is_allowed(principal.roles, Action.supervise_clue):
        raise NotFound("线索不存在", message_en="clue not found")
    reminded = select(ClueReminder.clue_id)
    # A concluded clue stays on the list while its reporter's 回访 or the answer to an objection is overdue.
    follow_up_overdue, objection_overdue = contact_overdue()
    query = (
        select(Clue, ClueState)
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .where(
            (
                Clue.status.in_([s.value for s in lifecycle.OPEN_STATUSES])
                & ((ClueState.key_clue.is_(True)) | Clue.id.in_(reminded))
            )
            | Clue.id.in_(follow_up_overdue)
            | Clue.id.in_(objection_overdue)
        )
        .order_by(Clue.due_at)
        .limit(500)
    )
    now = utcnow()
    rules = await lifecycle.load_rules(session)
    late_follow_up = set((await session.scalars(follow_up_overdue)).all())
    late_objection = set((await session.scalars(objection_overdue)).all())

    def acceptance(clue: Clue, state: ClueState | None) -> dict[str, Any] | None:
        # Real-name clues only; categories are not loaded here, so a category-specific rule is not applied.
        if not clue.real_name:
            return None
        due = acceptance_due(rules, clue)
        given = state.acceptance_notice_at if state else None
        return {
            "due_at": due,
            "given_at": given,
            "alert": "done" if given else deadlines.alert_level(clue.received_at, due, now).value,
        }

    return [
        {
            "id": clue.id,
            "registry_number": clue.registry_number,
            "status": clue.status,
            "due_at": clue.due_at,
            "overdue": clue.due_at < now,
            # ok / half / warning / overdue: working days used of the stage's limit
            "alert": deadlines.alert_level(
                (state.stage_started_at if state else None) or clue.registered_at, clue.due_at, now
            ).value,
            "key_clue": bool(state and state.key_clue),
            "supervising_leader_id": state.supervising_leader_id if state else None,
            "leader_takes_case": bool(state and state.leader_takes_case),
            "handling_unit_id": clue.handling_unit_id,
            "assignee_id": clue.assignee_id,
            "acceptance_notice": acceptance(clue, state),
            "follow_up_overdue": clue.id in late_follow_up,
            "objection_overdue": clue.id in late_objection,
        }
        for clue, state in (await session.execute(query)).all()
    ]
