"""Routing rules (data edited by admins), the routing of a clue at triage, reassignment with a reason,
and the deadline rules' administration.

A rule matches a clue when its category is one of the clue's (or the rule has none) and its accused unit is
the clue's accused unit or an ancestor of it (or the rule has none). Rules are tried by priority (lower
first); a rule whose handling unit or default assignee would break recusal is skipped, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth import service as auth_service
from service.auth.models import Staff, Unit
from service.auth.permissions import Role
from service.auth.service import Principal
from service.platform.db import new_id
from service.platform.errors import Conflict, Invalid, NotFound
from service.platform.runtime import Sealing
from service.platform.timeutil import utcnow
from service.registry import categories, recusal
from service.registry.deadlines import Stage
from service.registry.models import SOURCES, Clue, ClueState, ClueTransfer, DeadlineRule, RoutingRule
from service.registry.service import enforce_recusal, get_visible_clue


async def _active_investigator(session: AsyncSession, staff_id: str) -> Staff:
    try:
        staff = await auth_service.get_staff(session, staff_id)
    except NotFound:
        raise Invalid("默认承办人不存在", message_en="unknown default assignee") from None
    if staff.disabled or Role.investigator not in {r.role for r in staff.roles}:
        raise Invalid(
            "默认承办人必须是在岗的核查人员", message_en="the default assignee must be an active investigator"
        )
    return staff


async def route_clue(session: AsyncSession, *, clue: Clue, state: ClueState, sealing: Sealing) -> str | None:
    """Apply the first matching rule that respects recusal; returns its id (stored on the clue's state)."""
    rules = (
        await session.execute(
            select(RoutingRule)
            .where(RoutingRule.enabled.is_(True))
            .order_by(RoutingRule.priority, RoutingRule.created_at)
        )
    ).scalars()
    keys, words_key = sealing.keys, sealing.lookup_key(recusal.WORDS_KEY_LABEL)
    categories = {c.category for c in clue.categories}
    accused_chain = (
        set(await auth_service.unit_and_ancestors(session, clue.accused_unit_id))
        if clue.accused_unit_id
        else set()
    )
    for rule in rules:
        if rule.category is not None and rule.category not in categories:
            continue
        if rule.accused_unit_id is not None and rule.accused_unit_id not in accused_chain:
            continue
        try:
            await enforce_recusal(
                session, clue=clue, assignee_unit_id=rule.handling_unit_id, keys=keys, words_key=words_key
            )
        except Conflict:
            continue
        clue.handling_unit_id = rule.handling_unit_id
        if rule.default_assignee_id:
            assignee = await session.scalar(
                select(Staff).where(Staff.id == rule.default_assignee_id).options(selectinload(Staff.roles))
            )
            if (
                assignee is not None
                and not assignee.disabled
                and assignee.unit_id is not None
                and Role.investigator in {r.role for r in assignee.roles}
            ):
                try:
                    await enforce_recusal(
                        session,
                        clue=clue,
                        assignee_unit_id=assignee.unit_id,
                        keys=keys,
                        words_key=words_key,
                    )
                except Conflict:
                    pass
                else:
                    clue.assignee_id, clue.assigned_at = assignee.id, utcnow()
        state.routing_rule_id = rule.id
        return rule.id
    return None


@dataclass(frozen=True)
class RuleInput:
    handling_unit_id: str
    category: str | None = None
    accused_unit_id: str | None = None
    default_assignee_id: str | None = None
    priority: int = 100
    enabled: bool = True


async def _validate_rule(session: AsyncSession, data: RuleInput) -> None:
    if data.category is not None and data.category not in categories.category_ids():
        raise Invalid("问题类别不存在", message_en=f"unknown category {data.category!r}")
    for unit_id in (data.handling_unit_id, data.accused_unit_id):
        if unit_id is not None:
            if await session.get(Unit, unit_id) is None:
                raise Invalid("单位不存在", message_en="unknown unit")
    if data.default_assignee_id:
        staff = await _active_investigator(session, data.default_assignee_id)
        if staff.unit_id != data.handling_unit_id:
            raise Invalid(
                "默认承办人须属于承办单位", message_en="the default assignee must work in the handling unit"
            )


async def add_rule(session: AsyncSession, *, data: RuleInput, actor: str) -> RoutingRule:
    await _validate_rule(session, data)
    rule = RoutingRule(id=new_id(), created_at=utcnow(), **vars(data))
    session.add(rule)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="routing_rule.created",
        object_type="routing_rule",
        object_id=rule.id,
        details=vars(data),
    )
    return rule


async def update_rule(session: AsyncSession, *, rule_id: str, data: RuleInput, actor: str) -> RoutingRule:
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("分办规则不存在", message_en="routing rule not found")
    await _validate_rule(session, data)
    for name, value in vars(data).items():
        setattr(rule, name, value)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="routing_rule.updated",
        object_type="routing_rule",
        object_id=rule.id,
        details=vars(data),
    )
    return rule


async def delete_rule(session: AsyncSession, *, rule_id: str, actor: str) -> None:
    """Remove a routing rule. Clues it routed keep its id (``clue_states.routing_rule_id``, the history);
    what the rule said stays in the audit entry."""
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("分办规则不存在", message_en="routing rule not found")
    details = {
        "handling_unit_id": rule.handling_unit_id,
        "category": rule.category,
        "accused_unit_id": rule.accused_unit_id,
        "default_assignee_id": rule.default_assignee_id,
        "priority": rule.priority,
        "enabled": rule.enabled,
    }
    await session.delete(rule)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="routing_rule.deleted",
        object_type="routing_rule",
        object_id=rule_id,
        details=details,
    )


async def list_rules(session: AsyncSession) -> list[RoutingRule]:
    query = select(RoutingRule).order_by(RoutingRule.priority, RoutingRule.created_at)
    return list((await session.execute(query)).scalars())


# --- Deadline rules --------------------------------------------------------------------------------


def _check_limit(working_days: int | None, months: int | None) -> None:
    if (working_days is None) == (months is None):
        raise Invalid("请只填写工作日或月数其中之一", message_en="give exactly one of working_days or months")
    if (working_days is not None and not 1 <= working_days <= 365) or (
        months is not None and not 1 <= months <= 24
    ):
        raise Invalid("期限超出范围", message_en="limit out of range (1-365 working days or 1-24 months)")


async def add_deadline_rule(
    session: AsyncSession,
    *,
    stage: str,
    source: str | None,
    category: str | None,
    working_days: int | None,
    months: int | None,
    actor: str,
) -> DeadlineRule:
    if stage not in {s.value for s in Stage}:
        raise Invalid("环节无效", message_en=f"stage must be one of {', '.join(s.value for s in Stage)}")
    if source is not None and source not in SOURCES:
        raise Invalid("来源无效", message_en="unknown source")
    if category is not None and category not in categories.category_ids():
        raise Invalid("问题类别不存在", message_en=f"unknown category {category!r}")
    _check_limit(working_days, months)
    rule = DeadlineRule(
        id=new_id(),
        stage=stage,
        source=source,
        category=category,
        working_days=working_days,
        months=months,
        created_at=utcnow(),
    )
    session.add(rule)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="deadline_rule.created",
        object_type="deadline_rule",
        object_id=rule.id,
        details={
            "stage": stage,
            "source": source,
            "category": category,
            "working_days": working_days,
            "months": months,
        },
    )
    return rule


async def update_deadline_limit(
    session: AsyncSession, *, rule_id: str, working_days: int | None, months: int | None, actor: str
) -> DeadlineRule:
    """Change a rule's limit (what it applies to stays; that is another rule). A clue's due date is worked
    out when a step starts a stage and then kept, so clues already in a stage keep the date they were given
    and the new limit applies from the next step; the acceptance notice to real-name reporters, worked out
    whenever it is looked at, follows the new limit at once. Audited with before and after."""
    rule = await session.get(DeadlineRule, rule_id, with_for_update=True)
    if rule is None:
        raise NotFound("期限规则不存在", message_en="deadline rule not found")
    _check_limit(working_days, months)
    before = {"working_days": rule.working_days, "months": rule.months}
    after = {"working_days": working_days, "months": months}
    if before != after:
        rule.working_days, rule.months = working_days, months
        await session.flush()
        await audit_service.record(
            session,
            actor=actor,
            action="deadline_rule.updated",
            object_type="deadline_rule",
            object_id=rule.id,
            details={"before": before, "after": after},
        )
    return rule


async def delete_deadline_rule(session: AsyncSession, *, rule_id: str, actor: str) -> None:
    rule = await session.get(DeadlineRule, rule_id)
    if rule is None:
        raise NotFound("期限规则不存在", message_en="deadline rule not found")
    await session.delete(rule)
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="deadline_rule.deleted",
        object_type="deadline_rule",
        object_id=rule_id,
    )


async def list_deadline_rules(session: AsyncSession) -> list[DeadlineRule]:
    return list((await session.execute(select(DeadlineRule).order_by(DeadlineRule.stage))).scalars())


# --- Transfer records ---------------------------------------------------------------------------------


async def list_transfers(session: AsyncSession, *, clue_id: str, principal: Principal) -> list[ClueTransfer]:
    """Every hand-off of a visible clue, oldest first: the whole transfer history stays."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    query = select(ClueTransfer).where(ClueTransfer.clue_id == clue.id).order_by(ClueTransfer.transferred_at)
    return list((await session.execute(query)).scalars())


async def record_transfer_feedback(
    session: AsyncSession, *, clue_id: str, transfer_id: str, principal: Principal
) -> ClueTransfer:
    """The receiving unit or organ has reported back on a hand-off."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    transfer = await session.get(ClueTransfer, transfer_id)
    if transfer is None or transfer.clue_id != clue.id:
        raise NotFound("移交记录不存在", message_en="transfer not found")
    if transfer.kind == "referral":
        raise Invalid("转出不属于受理范围的线索无需反馈", message_en="referrals expect no feedback")
    if transfer.feedback_at is not None:
        raise Conflict("已记录反馈", message_en="feedback already recorded")
    transfer.feedback_at = utcnow()
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.transfer_feedback",
        object_type="clue",
        object_id=clue.id,
        details={
            "transfer_id": transfer.id,
            "late": bool(
                transfer.expected_feedback_at and transfer.feedback_at > transfer.expected_feedback_at
            ),
        },
    )
    return transfer
