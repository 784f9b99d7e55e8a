"""Registry API: supervision, notes, acceptance notices, reminders, progress requests, consultations,
search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from service.api.registry.common import (
    CONFLICT,
    ERRORS,
    NOT_FOUND,
    Category,
    Limit,
    Status,
    clue_summary,
    transition_out,
)
from service.api.registry.schemas import (
    ConsultationIn,
    NoteIn,
    ProgressReportIn,
    ProgressRequestIn,
    SearchHit,
    SupervisionIn,
    TransitionOut,
)
from service.auth.permissions import Action
from service.auth.service import Principal
from service.classification import service as classification_service
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized
from service.registry import (
    lifecycle,
    search,
    supervision,
)

router = APIRouter(prefix="/api/v1", tags=["clues"], responses=STAFF_ERRORS)


@router.post(
    "/clues/{clue_id}/notes",
    summary="Add a working note to a clue",
    status_code=201,
    responses={**ERRORS, **NOT_FOUND},
)
async def add_note(
    clue_id: str,
    body: NoteIn,
    principal: Annotated[Principal, authorized(Action.handle_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TransitionOut:
    """A working note on a visible clue (sealed; shown in the history). Handler or supervisor."""
    row = await lifecycle.add_note(
        session, clue_id=clue_id, text=body.text, principal=principal, runtime=runtime
    )
    return transition_out(row)


@router.put(
    "/clues/{clue_id}/supervision",
    summary="Mark or unmark a key clue and its supervising leader",
    responses={**ERRORS, **NOT_FOUND},
)
async def set_supervision(
    clue_id: str,
    body: SupervisionIn,
    principal: Annotated[Principal, authorized(Action.supervise_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, object]:
    """Mark a key clue (重点线索) with its supervising leader; 包案 when the leader takes it on."""
    state = await supervision.set_supervision(
        session,
        clue_id=clue_id,
        key_clue=body.key_clue,
        leader_id=body.leader_id,
        leader_takes_case=body.leader_takes_case,
        reason=body.reason,
        principal=principal,
        runtime=runtime,
    )
    return {
        "key_clue": state.key_clue,
        "supervising_leader_id": state.supervising_leader_id,
        "leader_takes_case": state.leader_takes_case,
    }


@router.post(
    "/clues/{clue_id}/acceptance-notice",
    summary="Record the acceptance notice to a real-name reporter",
    status_code=201,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def acceptance_notice(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.handle_clue)],
    session: SessionDep,
) -> dict[str, object]:
    """Record that the real-name reporter was told whether the report was accepted (15 working days from
    receipt; the handler or a supervisor; audited, with a ``late`` flag). 409 for an anonymous report or
    when already recorded."""
    return await supervision.record_acceptance_notice(session, clue_id=clue_id, principal=principal)


@router.get("/supervision", summary="Key clues and clues with overdue notices", responses=ERRORS)
async def supervision_list(
    principal: Annotated[Principal, authorized(Action.supervise_clue)], session: SessionDep
) -> list[dict[str, object]]:
    """Open key clues and clues with an overdue notice (催办单), and concluded clues whose reporter's
    follow-up (回访) or the answer to an objection (异议) is overdue (``follow_up_overdue``,
    ``objection_overdue``)."""
    return await supervision.supervision_list(session, principal=principal)


@router.post("/reminders/scan", summary="Issue overdue notices now", responses=ERRORS)
async def scan_reminders(
    principal: Annotated[Principal, authorized(Action.supervise_clue)], session: SessionDep
) -> dict[str, int]:
    """Issue overdue notices now (the daily job does the same)."""
    return {"issued": await supervision.issue_overdue_reminders(session)}


@router.post(
    "/clues/{clue_id}/progress-requests",
    summary="Ask the handler for a progress report",
    status_code=201,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def request_progress(
    clue_id: str,
    body: ProgressRequestIn,
    principal: Annotated[Principal, authorized(Action.supervise_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, object]:
    row = await supervision.request_progress(
        session, clue_id=clue_id, due_on=body.due_on, note=body.note, principal=principal, runtime=runtime
    )
    return {"id": row.id, "due_at": row.due_at}


@router.get(
    "/clues/{clue_id}/progress-requests",
    summary="List a clue's progress requests and reports",
    responses={**ERRORS, **NOT_FOUND},
)
async def list_progress(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.report_progress)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[dict[str, object]]:
    return await supervision.list_progress(session, clue_id=clue_id, principal=principal, runtime=runtime)


@router.post(
    "/progress-requests/{request_id}/report",
    summary="Answer a progress request",
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def report_progress(
    request_id: str,
    body: ProgressReportIn,
    principal: Annotated[Principal, authorized(Action.report_progress)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, object]:
    row = await supervision.report_progress(
        session, request_id=request_id, report=body.report, principal=principal, runtime=runtime
    )
    return {"id": row.id, "reported_at": row.reported_at}


@router.post(
    "/clues/{clue_id}/consultations",
    summary="Record a consultation on a clue",
    status_code=201,
    responses={**ERRORS, **NOT_FOUND},
)
async def record_consultation(
    clue_id: str,
    body: ConsultationIn,
    principal: Annotated[Principal, authorized(Action.record_consultation)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, object]:
    row = await supervision.record_consultation(
        session,
        clue_id=clue_id,
        data=supervision.ConsultationInput(**body.model_dump()),
        principal=principal,
        runtime=runtime,
    )
    return {"id": row.id, "participant_count": row.participant_count}


@router.get(
    "/clues/{clue_id}/consultations", summary="List a clue's consultations", responses={**ERRORS, **NOT_FOUND}
)
async def list_consultations(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.record_consultation)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[dict[str, object]]:
    return await supervision.list_consultations(
        session, clue_id=clue_id, principal=principal, runtime=runtime
    )


@router.get(
    "/clue-search", summary="Search clues by accused person", response_model=list[SearchHit], responses=ERRORS
)
async def search_clues(
    principal: Annotated[Principal, authorized(Action.search_clues)],
    session: SessionDep,
    runtime: RuntimeDep,
    accused_name: Annotated[str | None, Query(max_length=200)] = None,
    accused_unit: Annotated[str | None, Query(max_length=200)] = None,
    accused_unit_id: Annotated[str | None, Query(max_length=36)] = None,
    registry_number: Annotated[str | None, Query(max_length=32)] = None,
    category: Category = None,
    status: Status = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    limit: Limit = 100,
) -> list[SearchHit]:
    """Search by accused person (name + unit as reported, matched through the keyed hash), registered
    unit, number, category, status and date. The search itself is audited (fields, not values)."""
    hits = await search.search_clues(
        session,
        query=search.SearchQuery(
            accused_name=accused_name,
            accused_unit=accused_unit,
            accused_unit_id=accused_unit_id,
            registry_number=registry_number,
            category=category,
            status=status,
            received_from=received_from,
            received_to=received_to,
        ),
        principal=principal,
        runtime=runtime,
        limit=limit,
    )
    return [SearchHit(**clue_summary(c).model_dump(), same_accused_count=n) for c, n in hits]


@router.get(
    "/clues/{clue_id}/related",
    summary="Clues about the same person and near-duplicates",
    responses={**ERRORS, **NOT_FOUND},
)
async def related_clues(
    clue_id: str, principal: Annotated[Principal, authorized(Action.search_clues)], session: SessionDep
) -> dict[str, object]:
    """Other clues about the same accused person, and near-duplicate texts (linked, never merged)."""
    return await classification_service.related_clues(session, clue_id=clue_id, principal=principal)
