"""Staff API: correct a clue's classification, read it with its evidence, see and reload the taxonomy."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter

from service.api.classification_schemas import ClassificationOut, CorrectionIn, CorrectionOut, TaxonomyOut
from service.auth.permissions import Action
from service.auth.service import Principal
from service.classification import service as classification_service
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized

router = APIRouter(prefix="/api/v1", tags=["classification"], responses=STAFF_ERRORS)

NOT_FOUND = {404: {"description": "No such clue, or not visible to the caller (the two look the same)"}}
INVALID = {422: {"description": "Unknown category, a category twice, `other` with another, or no reason"}}


@router.post(
    "/clues/{clue_id}/classification",
    summary="Correct a clue's categories",
    response_model=CorrectionOut,
    status_code=201,
    responses={**NOT_FOUND, **INVALID},
)
async def correct_classification(
    clue_id: str,
    body: CorrectionIn,
    principal: Annotated[Principal, authorized(Action.correct_classification)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> CorrectionOut:
    """Replace the clue's categories with a reason (sealed); audited with old and new labels."""
    correction = await classification_service.correct_classification(
        session,
        clue_id=clue_id,
        labels=body.labels,
        reason=body.reason,
        principal=principal,
        keys=runtime.keys,
    )
    return CorrectionOut(**dataclasses.asdict(correction))


@router.get(
    "/clues/{clue_id}/classification",
    summary="A clue's classification, evidence and corrections",
    response_model=ClassificationOut,
    responses=NOT_FOUND,
)
async def read_classification(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.read_classification)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> ClassificationOut:
    """The classification in force, the classifier's evidence and the correction history. Audited."""
    view = await classification_service.read_classification(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    return ClassificationOut(**dataclasses.asdict(view))


@router.get("/taxonomy", summary="The categories in force", response_model=TaxonomyOut)
async def taxonomy(principal: Annotated[Principal, authorized(Action.view_taxonomy)]) -> TaxonomyOut:
    """The categories in force in this process, with tier, name, description, term counts and version."""
    return TaxonomyOut(**classification_service.taxonomy_summary())


@router.post(
    "/taxonomy/reload",
    summary="Reload the taxonomy file in this process",
    response_model=TaxonomyOut,
    responses={422: {"description": "The file does not validate; the old taxonomy stays in force"}},
)
async def reload_taxonomy(
    principal: Annotated[Principal, authorized(Action.reload_taxonomy)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TaxonomyOut:
    """Re-read the configured taxonomy file (TIPLINE_TAXONOMY_PATH) in THIS process. Every process loads
    it when it starts; with several processes, restart them or call this on each. Audited."""
    summary = await classification_service.reload_taxonomy(
        session, path=runtime.settings.taxonomy_path, actor=principal.actor
    )
    return TaxonomyOut(**summary)
