"""What the registry's API routers share: error responses, query parameter types, output builders."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Query

from service.api.registry.schemas import (
    ClueSummary,
    TransitionOut,
)
from service.registry.models import (
    CHANNELS,
    SOURCES,
    Clue,
    ClueTransition,
)

ERRORS = {
    401: {"description": "Missing, unknown, expired or revoked token"},
    403: {"description": "The caller's role may not do this"},
    422: {"description": "Invalid filter or cursor"},
}
CONFLICT = {409: {"description": "Not allowed from the clue's current status, or recusal"}}
NOT_FOUND = {404: {"description": "No such clue, or not visible to the caller (the two look the same)"}}

Limit = Annotated[int, Query(ge=1, le=200)]
Status = Annotated[str | None, Query(max_length=16)]
Category = Annotated[str | None, Query(max_length=48)]
Source = Annotated[str | None, Query(pattern="^(" + "|".join(SOURCES) + ")$")]
Channel = Annotated[str | None, Query(pattern="^(" + "|".join(CHANNELS) + ")$")]


def clue_summary(clue: Clue) -> ClueSummary:
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


def transition_out(row: ClueTransition) -> TransitionOut:
    return TransitionOut(
        id=row.id,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        actor=row.actor,
        at=row.at,
        approver_id=row.approver_id,
        details=json.loads(row.details or "{}"),
    )
