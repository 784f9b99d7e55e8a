"""Reporter communication the rules ask for, beyond messages: follow-up calls and visits (回访) after a
finding, and a real-name reporter's objection to a finding (异议) with its handling.

Invariants:
- Each has its own time limit from the deadline rules (``registry.deadlines.Stage.follow_up``: from the
  finding; ``Stage.objection``: from receipt of the objection), computed when read, like the acceptance
  notice, so a changed rule applies at once; overdue ones get a 催办单 (``registry.supervision``).
- Words that can be the reporter's (a 回访 note, an objection's statement) are masked by the one rule
  (``classifier.mask_texts``) for staff; the originals are sealed to the identity key; the reporter's own
  copy of their objection and the answer to it are sealed to the reporter key, so the status page (which
  holds no case private key) shows them to the receipt holder and to nobody else. Staff-written answers
  are not masked.
- Only a real-name reporter may object, and only once the clue has a finding (it is concluded): the
  rules give anonymous reporters no feedback right (``/work/shared/domain.md``). One open objection per
  clue at a time.
- Every change and every staff read is audited in the caller's transaction; what the reporter sees never
  names a staff member.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.audit.service import PUBLIC_ACTOR
from service.auth.models import Staff
from service.auth.permissions import Action, require
from service.auth.service import Principal
from service.classification import classifier
from service.compartments import items as clue_items
from service.messages import reporter_key as rk
from service.messages.models import ReporterKey
from service.messages.service import clean_text, ensure_reporter_key
from service.platform.db import new_id
from service.platform.errors import Conflict, Invalid, NotFound
from service.platform.runtime import Configured, Sealing
from service.platform.timeutil import LOCAL, as_utc, utcnow
from service.registry import deadlines, lifecycle
from service.registry import service as registry_service
from service.registry.models import Clue, ClueState, FollowUp, Objection
from service.registry.supervision import OPEN_OBJECTION, follow_up_due, objection_due

MAX_NOTE_CHARS = 5_000
CONCLUDED = ("concluded", "archived")  # a finding exists: 回访 and 异议 are about it

# Codes and their names (Chinese, English), for pages and answers.
FOLLOW_UP_CHANNELS = {
    "phone": ("电话回访", "Phone call"),
    "visit": ("当面回访", "In person"),
    "letter": ("书面回访", "In writing"),
    "message": ("查询页留言", "Message on the status page"),
}
FOLLOW_UP_OUTCOMES = {
    "reached": ("已联系上", "Reached"),
    "not_reached": ("未能联系上", "Not reached"),
    "declined": ("举报人拒绝回访", "The reporter declined"),
}
OBJECTION_CHANNELS = {
    "status_page": ("查询页", "Status page"),
    "phone": ("电话", "Phone"),
    "letter": ("信函", "Letter"),
    "visit": ("来访", "Visit"),
}
OBJECTION_STATUSES = {
    "received": ("已收到，待处理", "Received, waiting to be handled"),
    "reviewing": ("已受理，正在复查", "Accepted for review"),
    "rejected": ("不予受理", "Not accepted for review"),
    "resolved": ("复查完毕", "Review finished"),
}
OBJECTION_RESULTS = {
    "finding_kept": ("维持原结论", "The finding stands"),
    "finding_changed": ("改变原结论", "The finding was changed"),
}
DECISIONS = ("review", "reject", "resolve")


def _binding(table: str, row_id: str, field: str) -> str:
    return f"{table}/{row_id}/{field}"


def identity_binding(table: str, row_id: str) -> str:
    """Where the unmasked words of a 回访 note or an objection are sealed (identity key); a custody release
    opens them with the clue's identity (``intake.originals``)."""
    return _binding(table, row_id, "identity")


async def _masked(
    session: AsyncSession, sealing: Sealing, clue_id: str, text: str, table: str, row_id: str
) -> tuple[bytes, bytes | None]:
    """Reporter words: the masked text for staff (the clue's own key) and, if masking changed it, the original
    (identity key). The accused stays readable through the clue's keyed name digests, as in follow-ups."""
    stored = await session.scalar(select(Clue.accused_names).where(Clue.id == clue_id))
    accused = classifier.keyed_accused_names(
        stored, key=sealing.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL)
    )
    masked = classifier.mask_texts({"text": text}, accused=accused)
    staff_text = masked.texts["text"] or ""
    field = "note" if table == "clue_follow_ups" else "statement"
    # To the clue's own key (compartments; the case key for a clue registered before).
    seal = await clue_items.sealer(session, clue_id=clue_id, keys=sealing.keys)
    sealed = seal(staff_text.encode("utf-8"), _binding(table, row_id, field))
    original = (
        sealing.keys.seal_identity(
            json.dumps(masked.originals, ensure_ascii=False).encode("utf-8"),
            identity_binding(table, row_id),
        )
        if masked.originals
        else None
    )
    return sealed, original


async def _for_reporter(session: AsyncSession, clue_id: str, text: str, binding: str) -> bytes | None:
    key = await session.get(ReporterKey, clue_id)
    return rk.seal_for_reporter(key.public_key, text.encode("utf-8"), binding) if key else None


def _local_day(value: date | datetime | None, what: tuple[str, str]) -> datetime:
    """A day the user gave (a date: noon local time), not in the future."""
    zh, en = what
    if value is None:
        raise Invalid(f"请填写{zh}", message_en=f"the {en} is missing")
    moment = (
        as_utc(value)
        if isinstance(value, datetime)
        else as_utc(datetime(value.year, value.month, value.day, 12, tzinfo=LOCAL))
    )
    if moment.astimezone(LOCAL).date() > utcnow().astimezone(LOCAL).date():
        raise Invalid(f"{zh}不能晚于今天", message_en=f"the {en} is in the future")
    return moment


# --- Deadlines -----------------------------------------------------------------------------------------


# --- 回访 -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpView:
    id: str
    visited_at: datetime
    channel: str
    visitor_id: str
    visitor_name: str
    outcome: str
    note: str  # masked
    due_at: datetime | None
    late: bool
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class FollowUpState:
    """Whether the clue's 回访 is due (a real-name reporter and a finding), by when, and whether done."""

    due_at: datetime | None
    done: bool
    alert: str | None  # ok / half / warning / overdue, or None when nothing is due
    items: list[FollowUpView]


async def _concluded(session: AsyncSession, clue: Clue) -> datetime:
    state = await session.get(ClueState, clue.id)
    if clue.status not in CONCLUDED or state is None or state.concluded_at is None:
        raise Conflict("线索尚未办结，还没有办理结果", message_en="the clue has no finding yet")
    return state.concluded_at


async def record_follow_up(
    session: AsyncSession,
    *,
    clue_id: str,
    principal: Principal,
    runtime: Configured,
    visited_on: date | datetime | None,
    channel: str,
    outcome: str,
    note: str = "",
    visitor_id: str | None = None,
) -> FollowUpView:
    """Record a 回访 of a concluded clue (its handler or a supervisor); audited as
    ``clue.follow_up_recorded`` with a ``late`` flag against the rule's deadline."""
    require(principal.roles, Action.record_follow_up)
    clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    if channel not in FOLLOW_UP_CHANNELS:
        raise Invalid("请选择回访方式", message_en=f"channel is one of {', '.join(FOLLOW_UP_CHANNELS)}")
    if outcome not in FOLLOW_UP_OUTCOMES:
        raise Invalid("请选择回访结果", message_en=f"outcome is one of {', '.join(FOLLOW_UP_OUTCOMES)}")
    visited_at = _local_day(visited_on, ("回访日期", "date of the follow-up"))
    note = clean_text(note, limit=MAX_NOTE_CHARS, what=("回访情况", "note")) if (note or "").strip() else ""
    visitor_id = visitor_id or principal.staff_id
    visitor = await session.get(Staff, visitor_id) if visitor_id else None
    if visitor is None:
        raise Invalid("回访人不存在", message_en="unknown visitor")
    concluded_at = await _concluded(session, clue)
    if visited_at.astimezone(LOCAL).date() < concluded_at.astimezone(LOCAL).date():
        raise Invalid("回访日期不能早于办结日期", message_en="a follow-up comes after the finding")
    due = follow_up_due(await lifecycle.load_rules(session), clue, concluded_at) if clue.real_name else None
    row = FollowUp(
        id=new_id(),
        clue_id=clue.id,
        visited_at=visited_at,
        channel=channel,
        visitor_id=visitor.id,
        outcome=outcome,
        due_at=due,
        recorded_by=principal.actor,
        recorded_at=utcnow(),
    )
    if note:
        row.note, row.identity = await _masked(session, runtime, clue.id, note, "clue_follow_ups", row.id)
    session.add(row)
    await session.flush()
    late = due is not None and visited_at > due
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.follow_up_recorded",
        object_type="clue",
        object_id=clue.id,
        details={"follow_up_id": row.id, "channel": channel, "outcome": outcome, "late": late},
    )
    opener = await clue_items.opener(session, clue_id=clue.id, unlocked=principal.unlocked, keys=runtime.keys)
    return _follow_up_view(row, opener, visitor.name)


def _follow_up_view(row: FollowUp, opener: clue_items.ItemOpener, visitor_name: str) -> FollowUpView:
    note = (
        opener.open(row.note, _binding("clue_follow_ups", row.id, "note")).decode("utf-8") if row.note else ""
    )
    return FollowUpView(
        id=row.id,
        visited_at=row.visited_at,
        channel=row.channel,
        visitor_id=row.visitor_id,
        visitor_name=visitor_name,
        outcome=row.outcome,
        note=note,
        due_at=row.due_at,
        late=row.due_at is not None and row.visited_at > row.due_at,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )


async def follow_ups(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Configured
) -> FollowUpState:
    """The clue's 回访 records and whether one is due (an audited read: the notes are sealed)."""
    require(principal.roles, Action.record_follow_up)
    clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = list(
        (
            await session.execute(
                select(FollowUp, Staff.name)
                .join(Staff, Staff.id == FollowUp.visitor_id)
                .where(FollowUp.clue_id == clue.id)
                .order_by(FollowUp.visited_at, FollowUp.id)
            )
        ).all()
    )
    opener = await clue_items.opener(session, clue_id=clue.id, unlocked=principal.unlocked, keys=runtime.keys)
    items = [_follow_up_view(row, opener, name) for row, name in rows]
    if items:
        await audit_service.record(
            session,
            actor=principal.actor,
            action="clue.follow_ups_read",
            object_type="clue",
            object_id=clue.id,
            details={"follow_up_ids": [i.id for i in items]},
        )
    state = await session.get(ClueState, clue.id)
    concluded_at = state.concluded_at if state else None
    if not clue.real_name or clue.status not in CONCLUDED or concluded_at is None:
        return FollowUpState(None, bool(items), None, items)
    due = follow_up_due(await lifecycle.load_rules(session), clue, concluded_at)
    done = bool(items)
    alert = "done" if done else deadlines.alert_level(concluded_at, due, utcnow()).value
    return FollowUpState(due, done, alert, items)


# --- 异议 -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectionView:
    id: str
    channel: str
    received_at: datetime
    status: str
    result: str | None
    statement: str  # staff: masked; the reporter: as written
    answer: str  # the reason or result told to the reporter
    due_at: datetime | None  # staff only
    overdue: bool
    reviewed_at: datetime | None
    closed_at: datetime | None


def _may_object(real_name: bool, status: str) -> None:
    if not real_name:
        raise Conflict(
            "匿名举报不适用异议程序：按规定只有实名举报人可以对处理结果提出异议",
            message_en="only a real-name reporter may object to a finding",
        )
    if status not in CONCLUDED:
        raise Conflict(
            "线索尚未办结，还没有可以提出异议的处理结果",
            message_en="the clue has no finding to object to yet",
        )


async def _no_open_objection(session: AsyncSession, clue_id: str) -> None:
    open_one = await session.scalar(
        select(Objection.id).where(Objection.clue_id == clue_id, Objection.status.in_(OPEN_OBJECTION))
    )
    if open_one is not None:
        raise Conflict(
            "已有一项异议正在处理，请等待答复", message_en="an objection to this finding is being handled"
        )


async def _new_objection(
    session: AsyncSession,
    *,
    clue_id: str,
    sealing: Sealing,
    text: str,
    channel: str,
    received_at: datetime,
    actor: str,
) -> Objection:
    text = clean_text(text, limit=MAX_NOTE_CHARS, what=("异议", "objection"))
    await _no_open_objection(session, clue_id)
    row = Objection(
        id=new_id(),
        clue_id=clue_id,
        channel=channel,
        received_at=received_at,
        status="received",
        recorded_by=actor,
    )
    row.statement, row.identity = await _masked(session, sealing, clue_id, text, "clue_objections", row.id)
    row.reporter_copy = await _for_reporter(
        session, clue_id, text, _binding("clue_objections", row.id, "reporter")
    )
    session.add(row)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="clue.objection_received",
        object_type="clue",
        object_id=clue_id,
        details={"objection_id": row.id, "channel": channel},
    )
    return row


async def reporter_object(
    session: AsyncSession,
    *,
    clue_id: str,
    real_name: bool,
    status: str,
    code: str,
    sealing: Sealing,
    text: str,
) -> None:
    """An objection from the status page (the caller checked the receipt code; ``real_name`` and
    ``status`` are what the receipt opened). The deadline is counted from now."""
    _may_object(real_name, status)
    await ensure_reporter_key(session, clue_id=clue_id, code=code)
    await _new_objection(
        session,
        clue_id=clue_id,
        sealing=sealing,
        text=text,
        channel="status_page",
        received_at=utcnow(),
        actor=PUBLIC_ACTOR,
    )


async def record_objection(
    session: AsyncSession,
    *,
    clue_id: str,
    principal: Principal,
    runtime: Configured,
    channel: str,
    received_on: date | datetime | None,
    text: str,
) -> ObjectionView:
    """An objection a real-name reporter made by phone, letter or in person, as staff took it down (the
    reporter's words: masked like every reporter text)."""
    require(principal.roles, Action.record_objection)
    clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    if channel not in OBJECTION_CHANNELS or channel == "status_page":
        raise Invalid("请选择异议提出方式", message_en="channel is one of phone, letter, visit")
    received_at = _local_day(received_on, ("收到异议日期", "date the objection was received"))
    _may_object(clue.real_name, clue.status)
    row = await _new_objection(
        session,
        clue_id=clue.id,
        sealing=runtime,
        text=text,
        channel=channel,
        received_at=received_at,
        actor=principal.actor,
    )
    opener = await clue_items.opener(session, clue_id=clue.id, unlocked=principal.unlocked, keys=runtime.keys)
    return _staff_view(row, opener, objection_due(await lifecycle.load_rules(session), clue, received_at))


def _staff_view(row: Objection, opener: clue_items.ItemOpener, due: datetime) -> ObjectionView:
    answer = (
        opener.open(row.answer, _binding("clue_objections", row.id, "answer")).decode("utf-8")
        if row.answer
        else ""
    )
    return ObjectionView(
        id=row.id,
        channel=row.channel,
        received_at=row.received_at,
        status=row.status,
        result=row.result,
        statement=opener.open(row.statement, _binding("clue_objections", row.id, "statement")).decode(
            "utf-8"
        ),
        answer=answer,
        due_at=due,
        overdue=row.status in OPEN_OBJECTION and utcnow() > due,
        reviewed_at=row.reviewed_at,
        closed_at=row.closed_at,
    )


async def objections(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Configured
) -> list[ObjectionView]:
    """A clue's objections with their handling and deadlines (an audited read)."""
    require(principal.roles, Action.record_objection)
    clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = list(
        (
            await session.execute(
                select(Objection).where(Objection.clue_id == clue.id).order_by(Objection.received_at)
            )
        ).scalars()
    )
    if not rows:
        return []
    rules = await lifecycle.load_rules(session)
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.objections_read",
        object_type="clue",
        object_id=clue.id,
        details={"objection_ids": [r.id for r in rows]},
    )
    opener = await clue_items.opener(session, clue_id=clue.id, unlocked=principal.unlocked, keys=runtime.keys)
    return [_staff_view(r, opener, objection_due(rules, clue, r.received_at)) for r in rows]


async def decide_objection(
    session: AsyncSession,
    *,
    objection_id: str,
    principal: Principal,
    runtime: Configured,
    decision: str,
    text: str = "",
    result: str | None = None,
) -> ObjectionView:
    """Handle an objection: ``review`` (accept it for review), ``reject`` (with a reason the reporter
    reads), ``resolve`` (a review's result, with what the reporter is told). Audited as
    ``clue.objection_decided``."""
    require(principal.roles, Action.decide_objection)
    row = await session.get(Objection, objection_id[:36])
    if row is None:
        raise NotFound("异议不存在", message_en="objection not found")
    try:
        clue = await registry_service.get_visible_clue(session, clue_id=row.clue_id, principal=principal)
    except NotFound:
        raise NotFound("异议不存在", message_en="objection not found") from None
    if decision not in DECISIONS:
        raise Invalid("请选择处理方式", message_en=f"decision is one of {', '.join(DECISIONS)}")
    allowed_from = {"review": ("received",), "reject": ("received",), "resolve": ("reviewing",)}[decision]
    if row.status not in allowed_from:
        raise Conflict(
            f"此异议当前为“{OBJECTION_STATUSES[row.status][0]}”，不能这样处理",
            message_en=f"the objection is {row.status}: cannot {decision}",
        )
    if decision == "resolve" and result not in OBJECTION_RESULTS:
        raise Invalid("请选择复查结论", message_en="result is finding_kept or finding_changed")
    needs_text = decision in ("reject", "resolve")
    if needs_text and not (text or "").strip():
        raise Invalid(
            "不予受理须写明理由" if decision == "reject" else "请填写告知举报人的复查结果",
            message_en="give the reason" if decision == "reject" else "give the result the reporter is told",
        )
    if needs_text or (text or "").strip():
        what = {
            "review": ("受理说明", "note"),
            "reject": ("不予受理的理由", "reason"),
            "resolve": ("复查结果", "result"),
        }
        text = clean_text(text, limit=MAX_NOTE_CHARS, what=what[decision])
        seal = await clue_items.sealer(session, clue_id=row.clue_id, keys=runtime.keys)
        row.answer = seal(text.encode("utf-8"), _binding("clue_objections", row.id, "answer"))
        row.answer_copy = await _for_reporter(
            session, row.clue_id, text, _binding("clue_objections", row.id, "answer_copy")
        )
    now = utcnow()
    if decision == "review":
        row.status, row.reviewed_at = "reviewing", now
    else:
        row.status, row.closed_at = ("rejected" if decision == "reject" else "resolved"), now
        row.result = result if decision == "resolve" else None
    row.handled_by = principal.actor
    await session.flush()
    due = objection_due(await lifecycle.load_rules(session), clue, row.received_at)
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.objection_decided",
        object_type="clue",
        object_id=row.clue_id,
        details={"objection_id": row.id, "decision": decision, "result": row.result, "late": now > due},
    )
    opener = await clue_items.opener(
        session, clue_id=row.clue_id, unlocked=principal.unlocked, keys=runtime.keys
    )
    return _staff_view(row, opener, due)


async def reporter_objections(session: AsyncSession, *, clue_id: str, code: str) -> list[ObjectionView]:
    """The clue's objections as the receipt holder sees them: their own words and the answer, through the
    reporter key; no staff names, no deadlines of staff's."""
    key = await ensure_reporter_key(session, clue_id=clue_id, code=code)
    private = rk.unwrap(rk.WrappedReporterKey(key.public_key, key.salt, key.wrapped_private), code, clue_id)
    rows = await session.execute(  # only the columns the intake role may read (custody/db_roles.py)
        select(
            Objection.id,
            Objection.channel,
            Objection.received_at,
            Objection.status,
            Objection.result,
            Objection.reporter_copy,
            Objection.answer_copy,
            Objection.reviewed_at,
            Objection.closed_at,
        )
        .where(Objection.clue_id == clue_id)
        .order_by(Objection.received_at, Objection.id)
    )

    def opened(sealed: bytes | None, row_id: str, field: str) -> str:
        if sealed is None:
            return ""
        return rk.open_for_reporter(private, sealed, _binding("clue_objections", row_id, field)).decode(
            "utf-8"
        )

    return [
        ObjectionView(
            id=r.id,
            channel=r.channel,
            received_at=r.received_at,
            status=r.status,
            result=r.result,
            statement=opened(r.reporter_copy, r.id, "reporter"),
            answer=opened(r.answer_copy, r.id, "answer_copy"),
            due_at=None,
            overdue=False,
            reviewed_at=r.reviewed_at,
            closed_at=r.closed_at,
        )
        for r in rows
    ]
