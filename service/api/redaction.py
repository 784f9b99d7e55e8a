"""Redaction over the API: redact spans of a clue's texts and regions of its files as new versions, list
the versions with who and why, read what goes onward, ask to unmask a wrongly masked span. Thin: one
service call each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from service.auth.permissions import Action
from service.auth.service import Principal
from service.handoff import texts as handoff_texts
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized
from service.redaction import files
from service.redaction import service as redaction_service

router = APIRouter(prefix="/api/v1", tags=["redaction"], responses=STAFF_ERRORS)

NOT_FOUND = {404: {"description": "No such clue, text or file, or not visible to the caller"}}
STALE = {409: {"description": "base_version is not the latest version (or the file is sealed)"}}
Reason = Annotated[str, Field(min_length=1, max_length=1000, description="Why (required, audited)")]
BaseVersion = Annotated[
    int, Field(ge=0, description="The version the marks refer to: 0 is the stored text or file")
]


class TextRedactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: Literal["report", "message", "addition", "accused"]
    target_id: str | None = Field(
        default=None, max_length=36, description="The message or addition id (not for the report or accused)"
    )
    field: str | None = Field(
        default=None,
        max_length=24,
        description='An addition\'s text field ("text", "correction"); for accused: name, unit, position, '
        "rank or region",
    )
    base_version: BaseVersion
    spans: list[Annotated[list[int], Field(min_length=2, max_length=2)]] = Field(
        default=[], max_length=200, description="[start, end) character offsets in the text staff see"
    )
    quotes: list[Annotated[str, Field(max_length=2000)]] = Field(
        default=[], max_length=50, description="Passages to cover wherever they occur"
    )
    reason: Reason


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(default=1, ge=1, description="Page, from 1 (images: 1)")
    x: float = Field(ge=0, description="From the left edge: image pixels, PDF points")
    y: float = Field(ge=0, description="From the top edge")
    width: float = Field(gt=0)
    height: float = Field(gt=0)


class FileRedactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_version: BaseVersion
    regions: list[RegionIn] = Field(min_length=1, max_length=files.MAX_REGIONS)
    reason: Reason


class VersionOut(BaseModel):
    id: str
    clue_id: str
    target: str
    target_id: str
    field: str
    version: int
    action: str = Field(description="redact | unmask")
    marks: dict[str, Any]
    reason: str
    created_by: str
    created_at: datetime
    text: str | None = Field(description="This version's text (texts)")
    kind: str | None = Field(description="This version's media type (files)")
    size: int | None
    sha256: str | None


class ShownMessageOut(BaseModel):
    id: str
    direction: str
    at: datetime
    text: str
    attachment_ids: list[str]


class ShownAdditionOut(BaseModel):
    id: str
    kind: str = Field(description="operator_addition | caller_confirmation")
    at: datetime
    fields: dict[str, str] = Field(description='Text fields as they go onward: "text", "correction"')
    confirmed: bool | None = Field(description="A caller's confirmation: whether they confirmed the record")


class ShownOut(BaseModel):
    report: str
    incident: dict[str, Any]
    accused: dict[str, Any]
    messages: list[ShownMessageOut]
    additions: list[ShownAdditionOut]


class UnmaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: Literal["report", "message", "addition"]
    target_id: str | None = Field(default=None, max_length=36)
    field: str | None = Field(default=None, max_length=24)
    base_version: BaseVersion
    start: int = Field(ge=0, description="The marker's offsets in that version's text")
    end: int = Field(ge=1)
    reason: Reason


class UnmaskOut(BaseModel):
    id: str
    clue_id: str
    target: str
    target_id: str
    field: str
    base_version: int
    start: int
    end: int
    reason: str
    status: str = Field(description="pending | applied")
    requested_by: str
    requested_at: datetime
    redaction_id: str | None


def _version(view: redaction_service.VersionView) -> VersionOut:
    return VersionOut(**vars(view))


@router.post(
    "/clues/{clue_id}/redactions/texts",
    summary="Redact spans of the report, a message or an addition",
    status_code=201,
    response_model=VersionOut,
    responses={**NOT_FOUND, **STALE},
)
async def redact_text(
    clue_id: str,
    body: TextRedactionIn,
    principal: Annotated[Principal, authorized(Action.redact)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> VersionOut:
    """Cover the spans (offsets into ``base_version``) and every occurrence of each quoted passage; the
    result is the next version, sealed with the case key; the original is kept. Audited with the reason."""
    view = await redaction_service.redact_text(
        session,
        clue_id=clue_id,
        target=body.target,
        target_id=body.target_id,
        field=body.field,
        base_version=body.base_version,
        spans=body.spans,
        quotes=body.quotes,
        reason=body.reason,
        principal=principal,
        keys=runtime.keys,
    )
    return _version(view)


@router.post(
    "/attachments/{attachment_id}/redactions",
    summary="Cover regions of an image or PDF pages",
    status_code=201,
    response_model=VersionOut,
    responses={**NOT_FOUND, **STALE},
)
async def redact_file(
    attachment_id: str,
    body: FileRedactionIn,
    principal: Annotated[Principal, authorized(Action.redact)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> VersionOut:
    """Cover the rectangles (image pixels, PDF points, from the top-left) of ``base_version`` of the cleaned
    file: images re-encoded without metadata, PDF text under a region removed from the page. Audited."""
    view = await redaction_service.redact_file(
        session,
        attachment_id=attachment_id,
        base_version=body.base_version,
        regions=[files.Region(**r.model_dump()) for r in body.regions],
        reason=body.reason,
        principal=principal,
        keys=runtime.keys,
        store=runtime.blobs,
    )
    return _version(view)


@router.get(
    "/clues/{clue_id}/redactions",
    summary="List a clue's redacted versions with who and why",
    response_model=list[VersionOut],
    responses=NOT_FOUND,
)
async def list_versions(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.redact)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[VersionOut]:
    """Every version, oldest first (an audited read)."""
    views = await redaction_service.list_versions(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    return [_version(v) for v in views]


@router.get(
    "/clues/{clue_id}/redacted",
    summary="The clue's texts as they go onward (redacted)",
    response_model=ShownOut,
    responses=NOT_FOUND,
)
async def shown_texts(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.redact)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> ShownOut:
    """The report, the accused person's details, the messages and a hotline caller's later additions and
    corrections exactly as a dossier shows them: masked, then the latest redaction."""
    shown = await handoff_texts.redacted_texts(session, clue_id=clue_id, principal=principal, runtime=runtime)
    return ShownOut(
        report=shown.report,
        incident=shown.incident,
        accused=shown.accused,
        messages=[
            ShownMessageOut(
                id=m.id, direction=m.direction, at=m.at, text=m.text, attachment_ids=list(m.attachment_ids)
            )
            for m in shown.messages
        ],
        additions=[ShownAdditionOut(**vars(a)) for a in shown.additions],
    )


@router.get(
    "/redactions/{redaction_id}/file",
    summary="Download one redacted version of a file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **NOT_FOUND},
)
async def version_file(
    redaction_id: str,
    principal: Annotated[Principal, authorized(Action.redact)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> StreamingResponse:
    """The file of that version (audited as ``attachment.redacted_downloaded``)."""
    download = await redaction_service.open_version_file(
        session, redaction_id=redaction_id, principal=principal, keys=runtime.keys, store=runtime.blobs
    )
    return StreamingResponse(
        download.chunks,
        media_type=download.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Content-Length": str(download.size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.post(
    "/clues/{clue_id}/unmask-requests",
    summary="Ask to unmask one automatically masked span",
    status_code=201,
    response_model=UnmaskOut,
    responses={**NOT_FOUND, **STALE},
)
async def request_unmask(
    clue_id: str,
    body: UnmaskIn,
    principal: Annotated[Principal, authorized(Action.request_unmask)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> UnmaskOut:
    """Records the request (pending, audited); custodians apply it with their shares
    (``tipline redaction unmask``), which reveals only that span."""
    view = await redaction_service.request_unmask(
        session,
        clue_id=clue_id,
        target=body.target,
        target_id=body.target_id,
        field=body.field,
        base_version=body.base_version,
        start=body.start,
        end=body.end,
        reason=body.reason,
        principal=principal,
        keys=runtime.keys,
    )
    return UnmaskOut(**vars(view))


@router.get(
    "/clues/{clue_id}/unmask-requests",
    summary="List a clue's unmask requests",
    response_model=list[UnmaskOut],
    responses=NOT_FOUND,
)
async def list_unmask_requests(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.redact)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[UnmaskOut]:
    views = await redaction_service.list_unmask_requests(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    return [UnmaskOut(**vars(view)) for view in views]
