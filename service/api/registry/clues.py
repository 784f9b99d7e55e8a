"""Registry API: Clues: the lists, one clue, assignment, documents staff add."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from service.api.attachments import blob_store as attachments_blob_store
from service.api.registry.common import (
    ERRORS,
    NOT_FOUND,
    Category,
    Channel,
    Limit,
    Source,
    Status,
    clue_summary,
)
from service.api.registry.schemas import (
    AccusedOut,
    AssignIn,
    ClueDetail,
    CluePage,
    ClueSummary,
    DocumentOut,
    RecusalIn,
    RecusalOut,
)
from service.attachments import documents
from service.auth.permissions import Action
from service.auth.service import Principal
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import CurrentStaff, authorized
from service.platform.blobs import LocalBlobStore
from service.registry import service as registry_service

UPLOAD_PATHS = ("/api/v1/clues/{clue_id}/documents",)  # streamed: exempt from the generic body limit

router = APIRouter(prefix="/api/v1", tags=["clues"], responses=STAFF_ERRORS)


@router.get(
    "/me/clues",
    summary="My assigned clues, soonest deadline first",
    response_model=CluePage,
    responses=ERRORS,
)
async def my_clues(
    principal: Annotated[Principal, authorized(Action.list_assigned_clues)],
    session: SessionDep,
    status: Status = None,
    category: Category = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CluePage:
    """The caller's assigned clues, soonest deadline first."""
    page = await registry_service.list_assigned(
        session,
        assignee_id=principal.staff_id,
        filters=registry_service.ClueFilters(status=status, category=category),
        limit=limit,
        cursor=cursor,
    )
    return CluePage(items=[clue_summary(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/clues", summary="List all clues", response_model=CluePage, responses=ERRORS)
async def list_clues(
    principal: Annotated[Principal, authorized(Action.list_all_clues)],
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
    return CluePage(items=[clue_summary(c) for c in page.items], next_cursor=page.next_cursor)


@router.get(
    "/clues/{clue_id}",
    summary="Read one clue (audited)",
    response_model=ClueDetail,
    responses={
        **ERRORS,
        **NOT_FOUND,
        403: {
            "description": "The caller's role may not read clues, or (compartments) the clue's key is "
            "not wrapped to the caller or their unit, or the token carries no personal key"
        },
    },
)
async def read_clue(
    clue_id: str, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> ClueDetail:
    """One clue with its content. Every read is recorded in the audit trail."""
    view = await registry_service.read_clue(session, clue_id=clue_id, principal=principal, keys=runtime.keys)
    return ClueDetail(
        **clue_summary(view.clue).model_dump(),
        text=view.text,
        accused=AccusedOut(**view.accused),
        incident=view.incident,
        category_hint=view.category_hint,
        notes=view.notes,
        classification=view.classification,
    )


@router.post(
    "/clues/{clue_id}/assign",
    summary="Assign a clue to an investigator",
    response_model=ClueSummary,
    responses={
        **ERRORS,
        **NOT_FOUND,
        409: {
            "description": "Recusal: the assignee works in the accused person's unit (conflict), or the unit "
            "as reported resembles the assignee's and confirm_recusal was not given (recusal_unconfirmed)"
        },
    },
)
async def assign_clue(
    clue_id: str,
    body: AssignIn,
    principal: Annotated[Principal, authorized(Action.assign_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> ClueSummary:
    """Assign a clue to an investigator (supervisors). Audited."""
    clue = await registry_service.assign_clue(
        session,
        clue_id=clue_id,
        assignee_id=body.assignee_id,
        principal=principal,
        runtime=runtime,
        confirm_recusal=body.confirm_recusal,
    )
    return clue_summary(clue)


@router.post(
    "/clues/{clue_id}/recusals",
    summary="Recuse a person from a clue",
    status_code=201,
    response_model=RecusalOut,
    responses={
        **ERRORS,
        **NOT_FOUND,
        409: {"description": "The person is the assignee, or already recused"},
        422: {"description": "No reason given"},
    },
)
async def recuse(
    clue_id: str,
    body: RecusalIn,
    principal: Annotated[Principal, authorized(Action.assign_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> RecusalOut:
    """Recuse a person (a conflict of interest): their wraps of the clue go, the handling unit's key no
    longer opens it for them, and they cannot be assigned it (supervisors). Audited."""
    removed = await registry_service.recuse_staff(
        session,
        clue_id=clue_id,
        staff_id=body.staff_id,
        reason=body.reason,
        principal=principal,
        keys=runtime.keys,
    )
    return RecusalOut(clue_id=clue_id, staff_id=body.staff_id, wraps_removed=removed)


@router.post(
    "/clues/{clue_id}/documents",
    summary="Add a document to a clue",
    status_code=201,
    response_model=DocumentOut,
    responses={
        **ERRORS,
        **NOT_FOUND,
        413: {"description": "File larger than the staff upload limit"},
        422: {"description": "File type not allowed or damaged"},
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def add_document(
    clue_id: str,
    request: Request,
    principal: Annotated[Principal, authorized(Action.handle_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
    store: Annotated[LocalBlobStore, Depends(attachments_blob_store)],
) -> DocumentOut:
    """Add a document to a clue one handles (supervisors: any clue), as the raw request body, streamed:
    the type is read from the bytes, metadata removed, the file encrypted as it arrives. Audited."""
    attachment_id = await documents.add_document(
        session, runtime=runtime, store=store, clue_id=clue_id, chunks=request.stream(), principal=principal
    )
    return DocumentOut(id=attachment_id)
