"""Public intake API. Thin: parse, one service call, answer."""

from __future__ import annotations

from fastapi import APIRouter

from service.audit.service import PUBLIC_ACTOR
from service.http.deps import RuntimeDep
from service.intake import service as intake_service
from service.intake.receipts import format_receipt
from service.intake.schemas import TipIn, TipReceipt

router = APIRouter(prefix="/api/v1", tags=["public intake"])

ERRORS = {
    413: {"description": "Request body too large"},
    422: {"description": "Invalid fields, listed by name (values are never echoed)"},
    503: {"description": "Temporarily unavailable; nothing was stored, retry later"},
}


@router.post("/tips", summary="Submit a report", status_code=201, response_model=TipReceipt, responses=ERRORS)
async def submit_tip(tip: TipIn, runtime: RuntimeDep) -> TipReceipt:
    """Submit a report. The answer carries the receipt code (查询码) once; it cannot be shown again.
    `201` is sent only after the report is committed."""
    submitted = await runtime.intake.submit(
        intake_service.Submission(
            text=tip.text,
            channel="web",
            anonymous=tip.anonymous,
            accused=tip.accused.model_dump(),
            incident=tip.incident.model_dump(),
            category_hint=tip.category_hint,
            submitter=tip.submitter.model_dump(),
        ),
        actor=PUBLIC_ACTOR,
    )
    return TipReceipt(receipt=format_receipt(submitted.receipt), registry_number=submitted.registry_number)
