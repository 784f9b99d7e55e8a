"""Staff API over the clue registry. Thin: authorise, one service call, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from service.auth.deps import CurrentStaff
from service.auth.permissions import Action, require
from service.db import SessionDep
from service.deps import RuntimeDep
from service.registry import service as registry_service
from service.registry.models import CHANNELS, SOURCES, Clue
from service.registry.schemas import AccusedOut, AssignIn, ClueDetail, CluePage, ClueSummary

router = APIRouter(prefix="/api/v1", tags=["clues"])

ERRORS = {
    401: {"description": "Missing, unknown, expired or revoked token"},
    403: {"description": "The caller's role may not do this"},
    422: {"description": "Invalid filter or cursor"},
}
NOT_FOUND = {404: {"description": "No such clue, or not visible to the caller (the two look the same)"}}

Limit = Annotated[int, Query(ge=1, le=200)]
Status = Annotated[str | None, Query(max_length=16)]
Category = Annotated[str | None, Query(max_length=48)]
Source = Annotated[str | None, Query(pattern="^(" + "|".join(SOURCES) + ")$")]
Channel = Annotated[str | None, Query(pattern="^(" + "|".join(CHANNELS) + ")$")]


def _summary(clue: Clue) -> ClueSummary:
    return ClueSummary(
        id=clue.id,
        registry_number=clue.registry_number,
        source=clue.source,
        channel=clue.channel,
        status=clue.status,
        categories=sorted(c.category for c in clue.categories),
        needs_triage=clue.needs_triage,
        real_name=clue.real_name,
        received_at=clue.received_at,
        due_at=clue.due_at,
        assignee_id=clue.assignee_id,
        handling_unit_id=clue.handling_unit_id,
    )


@router.get("/me/clues", response_model=CluePage, responses=ERRORS)
async def my_clues(
    principal: CurrentStaff,
    session: SessionDep,
    status: Status = None,
    category: Category = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CluePage:
    """The caller's assigned clues, soonest deadline first."""
    require(principal.roles, Action.list_assigned_clues)
    page = await registry_service.list_assigned(
        session,
        assignee_id=principal.staff_id,
        filters=registry_service.ClueFilters(status=status, category=category),
        limit=limit,
        cursor=cursor,
    )
    return CluePage(items=[_summary(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/clues", response_model=CluePage, responses=ERRORS)
async def list_clues(
    principal: CurrentStaff,
    session: SessionDep,
    status: Status = None,
    category: Category = None,
    source: Source = None,
    channel: Channel = None,
    unit_id: Annotated[str | None, Query(max_length=36, description="Handling unit")] = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CluePage:
    """Every clue, newest first (supervisors)."""
    require(principal.roles, Action.list_all_clues)
    filters = registry_service.ClueFilters(
        status=status,
        category=category,
        source=source,
        channel=channel,
        unit_id=unit_id,
        received_from=received_from,
        received_to=received_to,
    )
    page = await registry_service.list_all(session, filters=filters, limit=limit, cursor=cursor)
    return CluePage(items=[_summary(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/clues/{clue_id}", response_model=ClueDetail, responses={**ERRORS, **NOT_FOUND})
async def read_clue(
    clue_id: str, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> ClueDetail:
    """One clue with its content. Every read is recorded in the audit trail."""
    view = await registry_service.read_clue(session, clue_id=clue_id, principal=principal, keys=runtime.keys)
    return ClueDetail(
        **_summary(view.clue).model_dump(),
        text=view.text,
        accused=AccusedOut(**view.accused),
        incident=view.incident,
        category_hint=view.category_hint,
        classification=view.classification,
    )


@router.post(
    "/clues/{clue_id}/assign",
    response_model=ClueSummary,
    responses={
        **ERRORS,
        **NOT_FOUND,
        409: {"description": "Recusal: the assignee works in the accused person's unit"},
    },
)
async def assign_clue(
    clue_id: str, body: AssignIn, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> ClueSummary:
    """Assign a clue to an investigator (supervisors). Audited."""
    require(principal.roles, Action.assign_clue)
    clue = await registry_service.assign_clue(
        session, clue_id=clue_id, assignee_id=body.assignee_id, principal=principal, keys=runtime.keys
    )
    return _summary(clue)
