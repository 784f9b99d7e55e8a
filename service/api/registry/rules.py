"""Registry API: Routing and deadline rules (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from service.api.registry.common import (
    ERRORS,
)
from service.api.registry.schemas import (
    DeadlineLimitIn,
    DeadlineRuleIn,
    DeadlineRuleOut,
    RoutingRuleIn,
    RoutingRuleOut,
)
from service.auth.permissions import Action
from service.auth.service import Principal
from service.http.deps import SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized
from service.registry import (
    routing,
)
from service.registry.models import (
    DeadlineRule,
    RoutingRule,
)

router = APIRouter(prefix="/api/v1", tags=["clues"], responses=STAFF_ERRORS)


def _rule_out(rule: RoutingRule) -> RoutingRuleOut:
    return RoutingRuleOut(
        id=rule.id,
        handling_unit_id=rule.handling_unit_id,
        category=rule.category,
        accused_unit_id=rule.accused_unit_id,
        default_assignee_id=rule.default_assignee_id,
        priority=rule.priority,
        enabled=rule.enabled,
    )


@router.get(
    "/routing-rules", summary="List routing rules", response_model=list[RoutingRuleOut], responses=ERRORS
)
async def list_routing_rules(
    principal: Annotated[Principal, authorized(Action.list_routing_rules)], session: SessionDep
) -> list[RoutingRuleOut]:
    return [_rule_out(r) for r in await routing.list_rules(session)]


@router.post(
    "/routing-rules",
    summary="Create a routing rule",
    response_model=RoutingRuleOut,
    status_code=201,
    responses=ERRORS,
)
async def add_routing_rule(
    body: RoutingRuleIn,
    principal: Annotated[Principal, authorized(Action.manage_routing_rules)],
    session: SessionDep,
) -> RoutingRuleOut:
    rule = await routing.add_rule(session, data=routing.RuleInput(**body.model_dump()), actor=principal.actor)
    return _rule_out(rule)


@router.put(
    "/routing-rules/{rule_id}",
    summary="Change or disable a routing rule",
    response_model=RoutingRuleOut,
    responses={**ERRORS, 404: {}},
)
async def update_routing_rule(
    rule_id: str,
    body: RoutingRuleIn,
    principal: Annotated[Principal, authorized(Action.manage_routing_rules)],
    session: SessionDep,
) -> RoutingRuleOut:
    rule = await routing.update_rule(
        session, rule_id=rule_id, data=routing.RuleInput(**body.model_dump()), actor=principal.actor
    )
    return _rule_out(rule)


@router.delete(
    "/routing-rules/{rule_id}",
    summary="Remove a routing rule",
    status_code=204,
    responses={**ERRORS, 404: {}},
)
async def delete_routing_rule(
    rule_id: str,
    principal: Annotated[Principal, authorized(Action.manage_routing_rules)],
    session: SessionDep,
) -> None:
    await routing.delete_rule(session, rule_id=rule_id, actor=principal.actor)


def _deadline_out(rule: DeadlineRule) -> DeadlineRuleOut:
    return DeadlineRuleOut(
        id=rule.id,
        stage=rule.stage,
        source=rule.source,
        category=rule.category,
        working_days=rule.working_days,
        months=rule.months,
    )


@router.get(
    "/deadline-rules", summary="List deadline rules", response_model=list[DeadlineRuleOut], responses=ERRORS
)
async def list_deadline_rules(
    principal: Annotated[Principal, authorized(Action.list_routing_rules)], session: SessionDep
) -> list[DeadlineRuleOut]:
    return [_deadline_out(r) for r in await routing.list_deadline_rules(session)]


@router.post(
    "/deadline-rules",
    summary="Create a deadline rule",
    response_model=DeadlineRuleOut,
    status_code=201,
    responses=ERRORS,
)
async def add_deadline_rule(
    body: DeadlineRuleIn,
    principal: Annotated[Principal, authorized(Action.manage_deadline_rules)],
    session: SessionDep,
) -> DeadlineRuleOut:
    rule = await routing.add_deadline_rule(session, **body.model_dump(), actor=principal.actor)
    return _deadline_out(rule)


@router.put(
    "/deadline-rules/{rule_id}",
    summary="Change a deadline rule's limit (from the next step on)",
    response_model=DeadlineRuleOut,
    responses={**ERRORS, 404: {}},
)
async def update_deadline_rule(
    rule_id: str,
    body: DeadlineLimitIn,
    principal: Annotated[Principal, authorized(Action.manage_deadline_rules)],
    session: SessionDep,
) -> DeadlineRuleOut:
    rule = await routing.update_deadline_limit(
        session, rule_id=rule_id, **body.model_dump(), actor=principal.actor
    )
    return _deadline_out(rule)


@router.delete(
    "/deadline-rules/{rule_id}",
    summary="Remove a deadline rule",
    status_code=204,
    responses={**ERRORS, 404: {}},
)
async def delete_deadline_rule(
    rule_id: str,
    principal: Annotated[Principal, authorized(Action.manage_deadline_rules)],
    session: SessionDep,
) -> None:
    await routing.delete_deadline_rule(session, rule_id=rule_id, actor=principal.actor)
