"""Staff attachment API: ``GET /api/v1/clues/{id}/attachments`` and ``GET /api/v1/attachments/{id}``.
Thin: one service call each; the service authorises, audits and verifies."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from service.attachments import service as attachments_service
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import CurrentStaff
from service.platform.blobs import LocalBlobStore

router = APIRouter(prefix="/api/v1", tags=["attachments"], responses=STAFF_ERRORS)

NOT_FOUND = {404: {"description": "No such clue or file, or not visible to the caller"}}
UNAVAILABLE = {
    409: {
        "description": "The stored file is sealed (not cleanable), missing or failed verification; not served"
    }
}


class AttachmentOut(BaseModel):
    id: str
    message_id: str | None = Field(default=None, description="Set for files sent with a reporter's reply")
    kind: str = Field(description="Media type detected from the bytes")
    size: int = Field(description="Bytes of the stored (metadata-free) file")
    removed_metadata: list[str] = Field(
        description='Kinds of metadata removed, with counts ("office:comments=1"); never text from the file'
    )
    created_at: datetime
    name: str = Field(
        description="Neutral name (附件1.docx); the uploaded name is sealed to the identity key"
    )
    sealed_reason: str | None = Field(
        default=None,
        description="Set when the file could not be cleaned with confidence: it is sealed and not served",
    )
    sealed_reason_text: str | None = Field(default=None, description="The reason, for staff (Chinese)")


def blob_store(runtime: RuntimeDep) -> LocalBlobStore:
    return runtime.blobs


@router.get(
    "/clues/{clue_id}/attachments",
    summary="List a clue's files",
    response_model=list[AttachmentOut],
    responses=NOT_FOUND,
)
async def list_attachments(clue_id: str, principal: CurrentStaff, session: SessionDep) -> list[AttachmentOut]:
    """The clue's files (the report's and those sent with replies), oldest first; no content."""
    listings = await attachments_service.list_attachments(session, clue_id=clue_id, principal=principal)
    return [
        AttachmentOut(
            id=a.id,
            message_id=a.message_id,
            kind=a.kind,
            size=a.size,
            removed_metadata=list(a.removed_metadata),
            created_at=a.created_at,
            name=a.name,
            sealed_reason=a.sealed_reason,
            sealed_reason_text=attachments_service.sealed_reason_text(a.sealed_reason)
            if a.sealed_reason
            else None,
        )
        for a in listings
    ]


@router.get(
    "/attachments/{attachment_id}",
    summary="Download a file (metadata removed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file, metadata removed"},
        **NOT_FOUND,
        **UNAVAILABLE,
    },
)
async def download_attachment(
    attachment_id: str, request: Request, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> StreamingResponse:
    """Download one file (metadata removed), decrypted and verified segment by segment; audited. The
    name is generated (the uploaded name may identify the reporter)."""
    download = await attachments_service.open_download(
        session,
        attachment_id=attachment_id,
        principal=principal,
        keys=runtime.keys,
        store=runtime.blobs,
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
