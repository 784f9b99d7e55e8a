"""Staff API for clues typed in by staff: hotline calls and additions, letters, visits, staff sources.
Thin: authorise, one service call, answer. Bearer tokens (programs); the pages use the session login."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request

from service.auth.permissions import Action
from service.auth.service import Principal
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized
from service.intake import assisted as hotline_service
from service.intake import assisted_schemas as schemas
from service.intake import assisted_uploads as uploads
from service.intake.receipts import GROUP, format_receipt
from service.registry import service as registry_service

# Streamed: exempt from the generic body limit (exact route templates; see service.http.errors.BodySizeLimit).
UPLOAD_PATHS = ("/api/v1/hotline/calls/{clue_id}/recording", "/api/v1/letters/{clue_id}/pages")

router = APIRouter(prefix="/api/v1", tags=["hotline, letters, visits, staff sources"], responses=STAFF_ERRORS)

ERRORS = {
    401: {"description": "Missing, unknown, expired or revoked token"},
    403: {"description": "The caller's role may not do this"},
    422: {"description": "Invalid fields, listed by name (values are never echoed)"},
}


def receipt_groups(code: str) -> list[str]:
    return [code[i : i + GROUP] for i in range(0, len(code), GROUP)]


@router.post(
    "/hotline/calls",
    summary="Register a hotline call",
    status_code=201,
    response_model=schemas.CallReceipt,
    responses=ERRORS,
)
async def register_call(
    principal: Annotated[Principal, authorized(Action.register_call)],
    call: schemas.CallIn,
    runtime: RuntimeDep,
) -> schemas.CallReceipt:
    """Register a call (operators). The caller's number and name are sealed with the identity key; the
    answer carries the receipt code once, grouped for reading aloud."""
    done = await hotline_service.register_call(runtime=runtime, call=call, actor=principal.actor)
    return schemas.CallReceipt(
        clue_id=done.clue_id,
        registry_number=done.registry_number,
        receipt=format_receipt(done.receipt),
        receipt_groups=receipt_groups(done.receipt),
    )


@router.post(
    "/hotline/additions",
    summary="Add what a caller said to their earlier clue",
    status_code=201,
    response_model=schemas.AdditionOut,
    responses={**ERRORS, 404: {"description": "No live receipt with that code"}},
)
async def add_to_clue(
    principal: Annotated[Principal, authorized(Action.add_to_call_clue)],
    addition: schemas.AdditionIn,
    session: SessionDep,
    runtime: RuntimeDep,
) -> schemas.AdditionOut:
    """The caller phoned again with their code: add to that clue (add-only — nothing about the clue is
    returned). The code is marked read aloud again."""
    row = await hotline_service.add_to_clue_by_code(
        session, runtime=runtime, addition=addition, actor=principal.actor
    )
    return schemas.AdditionOut(addition_id=row.id)


@router.post(
    "/letters",
    summary="Register a letter",
    status_code=201,
    response_model=schemas.RegisteredOut,
    responses=ERRORS,
)
async def register_letter(
    principal: Annotated[Principal, authorized(Action.register_letter_visit)],
    letter: schemas.LetterIn,
    runtime: RuntimeDep,
) -> schemas.RegisteredOut:
    """Register a letter (operators). The writer's details are sealed with the identity key."""
    done = await hotline_service.register_letter(runtime=runtime, letter=letter, actor=principal.actor)
    return schemas.RegisteredOut(
        clue_id=done.clue_id, registry_number=done.registry_number, receipt=format_receipt(done.receipt)
    )


@router.post(
    "/visits",
    summary="Register a visit",
    status_code=201,
    response_model=schemas.RegisteredOut,
    responses=ERRORS,
)
async def register_visit(
    principal: Annotated[Principal, authorized(Action.register_letter_visit)],
    visit: schemas.VisitIn,
    runtime: RuntimeDep,
) -> schemas.RegisteredOut:
    """Register a visit (operators). The visitor's details are sealed with the identity key."""
    done = await hotline_service.register_visit(runtime=runtime, visit=visit, actor=principal.actor)
    return schemas.RegisteredOut(
        clue_id=done.clue_id, registry_number=done.registry_number, receipt=format_receipt(done.receipt)
    )


@router.post(
    "/staff-sources",
    summary="Register an assignment, self-inspection or confession",
    status_code=201,
    response_model=schemas.RegisteredOut,
    responses=ERRORS,
)
async def register_staff_source(
    principal: Annotated[Principal, authorized(Action.register_staff_source)],
    entry: Annotated[schemas.StaffSourceIn, Body()],
    runtime: RuntimeDep,
) -> schemas.RegisteredOut:
    """Register a superior assignment (上级交办), self-inspection finding (本级自查) or voluntary confession
    (干警主动坦白) — supervisors. Classified, numbered and audited like a public report."""
    done = await hotline_service.register_staff_source(runtime=runtime, entry=entry, actor=principal.actor)
    return schemas.RegisteredOut(clue_id=done.clue_id, registry_number=done.registry_number)


@router.get(
    "/clues/{clue_id}/additions",
    summary="What was added to a clue after registration",
    response_model=list[schemas.AdditionView],
    responses={**ERRORS, 404: {"description": "No such clue visible to the caller"}},
)
async def list_additions(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.read_own_profile)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[schemas.AdditionView]:
    """What was added to a clue after it was registered: the operator's call record, later additions,
    recordings (that one exists; the key stays with the identity key) and the caller's confirmation or
    correction from the status page. Staff who may read the clue; every read is audited."""
    await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    views = await hotline_service.list_additions(
        session, clue_id=clue_id, runtime=runtime, actor=principal.actor, unlocked=principal.unlocked
    )
    return [
        schemas.AdditionView(
            id=v.id,
            kind=v.kind,
            content={k: x for k, x in v.content.items() if k != "identity_wrapped_key"},
            created_at=v.created_at,
        )
        for v in views
    ]


UPLOAD_ERRORS = {
    **ERRORS,
    404: {"description": "No such clue registered by the caller"},
    413: {"description": "File too large"},
}


@router.post(
    "/hotline/calls/{clue_id}/recording",
    summary="Attach a call's recording",
    status_code=201,
    response_model=schemas.UploadOut,
    responses=UPLOAD_ERRORS,
    openapi_extra={
        "requestBody": {"content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def upload_recording(
    principal: Annotated[Principal, authorized(Action.register_call)],
    clue_id: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
) -> schemas.UploadOut:
    """Attach the call's recording (raw audio body, streamed; ≤ 100 MB by default,
    ``TIPLINE_HOTLINE_RECORDING_MAX_BYTES``) to a call you registered. Its
    key is wrapped with the identity key: a voice identifies the caller."""
    addition_id, _ = await uploads.attach_recording(
        session,
        runtime=runtime,
        store=runtime.blobs,
        clue_id=clue_id,
        chunks=request.stream(),
        actor=principal.actor,
    )
    return schemas.UploadOut(id=addition_id)


@router.post(
    "/letters/{clue_id}/pages",
    summary="Attach a scanned letter page",
    status_code=201,
    response_model=schemas.UploadOut,
    responses=UPLOAD_ERRORS,
    openapi_extra={
        "requestBody": {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def upload_letter_page(
    principal: Annotated[Principal, authorized(Action.register_letter_visit)],
    clue_id: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
) -> schemas.UploadOut:
    """Attach one scanned page (JPEG, PNG, WebP, TIFF, SVG, HEIC or PDF body, streamed; ≤ 20 MB by default,
    ``TIPLINE_LETTER_PAGE_MAX_BYTES``) to a letter you
    registered. Metadata is stripped; the file is stored encrypted like any attachment."""
    attachment_id = await uploads.attach_letter_page(
        session,
        runtime=runtime,
        store=runtime.blobs,
        clue_id=clue_id,
        chunks=request.stream(),
        actor=principal.actor,
    )
    return schemas.UploadOut(id=attachment_id)
