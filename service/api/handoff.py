"""Hand-off dossiers over the API: export a transferred or sent-on clue as a signed ZIP, record and read a
receiving organ's feedback against the dossier's hash. Thin: one service call each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from service.auth.permissions import Action
from service.auth.service import Principal
from service.handoff import service as handoff_service
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized

router = APIRouter(prefix="/api/v1", tags=["hand-off"], responses=STAFF_ERRORS)

NOT_FOUND = {404: {"description": "No such clue or dossier, or not visible to the caller"}}
NOT_HANDED_OFF = {409: {"description": "The clue has not been transferred or sent on"}}
Digest = Annotated[str, Path(min_length=64, max_length=64, description="The dossier's hash (hex)")]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10_000, description="What the receiving organ reported back")


class FeedbackOut(BaseModel):
    id: str
    dossier_id: str
    digest: str
    text: str
    recorded_by: str
    recorded_at: datetime


@router.post(
    "/clues/{clue_id}/dossier",
    summary="Export a handed-off clue's signed dossier",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The signed dossier (ZIP)"},
        **NOT_FOUND,
        **NOT_HANDED_OFF,
    },
)
async def export_dossier(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.export_dossier)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """The clue's dossier for the receiving unit or organ: a PDF, the cleaned files and a signed manifest of
    their hashes, without identity data. Audited with the dossier's hash (also in ``X-Dossier-Hash``)."""
    dossier = await handoff_service.export_dossier(
        session, clue_id=clue_id, principal=principal, runtime=runtime
    )
    return _zip_response(dossier)


class DossierOut(BaseModel):
    id: str
    transfer_id: str | None = Field(description="The hand-off it was produced for")
    digest: str
    hash_algorithm: str
    created_at: datetime
    kept: bool = Field(
        description="The ZIP is kept and can be downloaded again (GET /api/v1/dossiers/{hash})"
    )


def _zip_response(dossier: handoff_service.ExportedDossier) -> Response:
    return Response(
        dossier.data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{dossier.filename}"',
            "X-Dossier-Hash": f"{dossier.hash_algorithm}:{dossier.digest}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/clues/{clue_id}/dossiers",
    summary="A clue's dossiers (one is produced with each transfer or sending-on)",
    response_model=list[DossierOut],
    responses=NOT_FOUND,
)
async def list_dossiers(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.export_dossier)],
    session: SessionDep,
) -> list[DossierOut]:
    """Newest first: hashes and dates, no content."""
    rows = await handoff_service.list_dossiers(session, clue_id=clue_id, principal=principal)
    return [DossierOut(**vars(r)) for r in rows]


@router.get(
    "/dossiers/{digest}",
    summary="Download a dossier as it was produced",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The signed dossier (ZIP), unchanged"},
        **NOT_FOUND,
        409: {"description": "This dossier's ZIP was not kept (export the clue again)"},
    },
)
async def download_dossier(
    digest: Digest,
    principal: Annotated[Principal, authorized(Action.export_dossier)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """The same bytes as when it was produced (with a transfer, or by an export); audited."""
    dossier = await handoff_service.kept_dossier(session, digest=digest, principal=principal, runtime=runtime)
    return _zip_response(dossier)


@router.post(
    "/dossiers/{digest}/feedback",
    summary="Record a receiver's feedback on a dossier",
    status_code=201,
    response_model=FeedbackOut,
    responses=NOT_FOUND,
)
async def record_feedback(
    digest: Digest,
    body: FeedbackIn,
    principal: Annotated[Principal, authorized(Action.record_dossier_feedback)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> FeedbackOut:
    """Record the receiving organ's feedback against the dossier's hash (sealed, audited); the first one also
    marks the hand-off's feedback as received."""
    view = await handoff_service.record_feedback(
        session, digest=digest, text=body.text, principal=principal, runtime=runtime
    )
    return FeedbackOut(**vars(view))


@router.get(
    "/dossiers/{digest}/feedback",
    summary="List the feedback recorded on a dossier",
    response_model=list[FeedbackOut],
    responses=NOT_FOUND,
)
async def list_feedback(
    digest: Digest,
    principal: Annotated[Principal, authorized(Action.record_dossier_feedback)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[FeedbackOut]:
    """The feedback recorded against a dossier, oldest first (an audited read)."""
    views = await handoff_service.list_feedback(session, digest=digest, principal=principal, runtime=runtime)
    return [FeedbackOut(**vars(v)) for v in views]
