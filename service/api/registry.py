"""Staff API over the clue registry. Thin: authorise, one service call, shape the answer."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from service.api.attachments import blob_store as attachments_blob_store
from service.api.registry_schemas import (
    AccusedOut,
    AssignIn,
    ClueDetail,
    CluePage,
    ClueSummary,
    ConsultationIn,
    DeadlineRuleIn,
    DeadlineRuleOut,
    HistoryItem,
    NoteIn,
    ProgressReportIn,
    ProgressRequestIn,
    ReassignIn,
    RoutingRuleIn,
    RoutingRuleOut,
    SearchHit,
    SupervisionIn,
    TransferOut,
    TransitionIn,
    TransitionOut,
)
from service.attachments import documents
from service.auth.permissions import Action
from service.auth.service import Principal
from service.classification import service as classification_service
from service.http.deps import RuntimeDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import CurrentStaff, authorized
from service.platform.blobs import LocalBlobStore
from service.platform.db import SessionDep
from service.platform.errors import Invalid
from service.platform.timeutil import LOCAL
from service.registry import (
    brief,
    ledger,
    lifecycle,
    routing,
    search,
    stats,
    supervision,
    transfer_requests,
)
from service.registry import service as registry_service
from service.registry.models import (
    CHANNELS,
    SOURCES,
    Clue,
    ClueState,
    ClueTransfer,
    ClueTransition,
    DeadlineRule,
    RoutingRule,
)

router = APIRouter(prefix="/api/v1", tags=["clues"], responses=STAFF_ERRORS)

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
    return CluePage(items=[_summary(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/clues", response_model=CluePage, responses=ERRORS)
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
        keys=runtime.keys,
        runtime=runtime,
    )
    return _summary(clue)


# --- Lifecycle, reassignment, history (issue 8) ------------------------------------------------------

CONFLICT = {409: {"description": "Not allowed from the clue's current status, or recusal"}}


def _transition_out(row: ClueTransition) -> TransitionOut:
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


@router.post(
    "/clues/{clue_id}/transitions",
    response_model=TransitionOut,
    status_code=201,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def transition_clue(
    clue_id: str, body: TransitionIn, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> TransitionOut:
    """Move a clue along its lifecycle. Illegal steps: 409; missing or bad fields: 422. Audited."""
    request = lifecycle.TransitionRequest(
        **{**body.model_dump(), "attachment_ids": tuple(body.attachment_ids)}
    )
    row = await lifecycle.apply_transition(
        session, clue_id=clue_id, request=request, principal=principal, runtime=runtime
    )
    return _transition_out(row)


@router.get("/clues/{clue_id}/history", response_model=list[HistoryItem], responses={**ERRORS, **NOT_FOUND})
async def clue_history(
    clue_id: str, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> list[HistoryItem]:
    """Every step with who, when, why and the approver. Reading it is audited."""
    entries = await lifecycle.history(session, clue_id=clue_id, principal=principal, runtime=runtime)
    return [
        HistoryItem(
            **_transition_out(e.transition).model_dump(),
            **{
                k: e.sealed.get(k)
                for k in ("reason", "summary", "feedback", "clearing_record", "false_report_note")
            },
        )
        for e in entries
    ]


@router.get("/clues/{clue_id}/actions", responses={**ERRORS, **NOT_FOUND})
async def clue_actions(clue_id: str, principal: CurrentStaff, session: SessionDep) -> dict[str, object]:
    """The lifecycle steps open from the clue's current status."""
    clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
    state = await session.get(ClueState, clue.id)
    method = state.disposal_method if state else None
    return {"status": clue.status, "actions": lifecycle.allowed_actions(clue.status, method)}


@router.post(
    "/clues/{clue_id}/reassign", response_model=ClueSummary, responses={**ERRORS, **NOT_FOUND, **CONFLICT}
)
async def reassign_clue(
    clue_id: str,
    body: ReassignIn,
    principal: Annotated[Principal, authorized(Action.decide_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> ClueSummary:
    """Reassign with a reason (kept sealed in the history). Recusal applies."""
    clue = await lifecycle.reassign_clue(
        session,
        clue_id=clue_id,
        assignee_id=body.assignee_id,
        reason=body.reason,
        principal=principal,
        runtime=runtime,
    )
    return _summary(clue)


# --- Routing and deadline rules (admins) -------------------------------------------------------------


def _rule_out(rule: RoutingRule) -> RoutingRuleOut:
    return RoutingRuleOut(
        id=rule.id,
        handling_unit_id=rule.handling_unit_id,
        category=rule.category,
        accused_unit_id=rule.accused_unit_id,
        default_assignee_id=rule.default_assignee_id,
        priority=rule.priority,
        enabled=rule.enabled,
    )


@router.get("/routing-rules", response_model=list[RoutingRuleOut], responses=ERRORS)
async def list_routing_rules(
    principal: Annotated[Principal, authorized(Action.list_routing_rules)], session: SessionDep
) -> list[RoutingRuleOut]:
    return [_rule_out(r) for r in await routing.list_rules(session)]


@router.post("/routing-rules", response_model=RoutingRuleOut, status_code=201, responses=ERRORS)
async def add_routing_rule(
    body: RoutingRuleIn,
    principal: Annotated[Principal, authorized(Action.manage_routing_rules)],
    session: SessionDep,
) -> RoutingRuleOut:
    rule = await routing.add_rule(session, data=routing.RuleInput(**body.model_dump()), actor=principal.actor)
    return _rule_out(rule)


@router.put("/routing-rules/{rule_id}", response_model=RoutingRuleOut, responses={**ERRORS, 404: {}})
async def update_routing_rule(
    rule_id: str,
    body: RoutingRuleIn,
    principal: Annotated[Principal, authorized(Action.manage_routing_rules)],
    session: SessionDep,
) -> RoutingRuleOut:
    rule = await routing.update_rule(
        session, rule_id=rule_id, data=routing.RuleInput(**body.model_dump()), actor=principal.actor
    )
    return _rule_out(rule)


def _deadline_out(rule: DeadlineRule) -> DeadlineRuleOut:
    return DeadlineRuleOut(
        id=rule.id,
        stage=rule.stage,
        source=rule.source,
        category=rule.category,
        working_days=rule.working_days,
        months=rule.months,
    )


@router.get("/deadline-rules", response_model=list[DeadlineRuleOut], responses=ERRORS)
async def list_deadline_rules(
    principal: Annotated[Principal, authorized(Action.list_routing_rules)], session: SessionDep
) -> list[DeadlineRuleOut]:
    return [_deadline_out(r) for r in await routing.list_deadline_rules(session)]


@router.post("/deadline-rules", response_model=DeadlineRuleOut, status_code=201, responses=ERRORS)
async def add_deadline_rule(
    body: DeadlineRuleIn,
    principal: Annotated[Principal, authorized(Action.manage_deadline_rules)],
    session: SessionDep,
) -> DeadlineRuleOut:
    rule = await routing.add_deadline_rule(session, **body.model_dump(), actor=principal.actor)
    return _deadline_out(rule)


@router.delete("/deadline-rules/{rule_id}", status_code=204, responses={**ERRORS, 404: {}})
async def delete_deadline_rule(
    rule_id: str,
    principal: Annotated[Principal, authorized(Action.manage_deadline_rules)],
    session: SessionDep,
) -> None:
    await routing.delete_deadline_rule(session, rule_id=rule_id, actor=principal.actor)


# --- Supervision, consultations, search (issue 8) ----------------------------------------------------


def _transfer_out(row: ClueTransfer) -> TransferOut:
    return TransferOut(
        id=row.id,
        kind=row.kind,
        to_unit_id=row.to_unit_id,
        target=row.target,
        document_number=row.document_number,
        transferred_at=row.transferred_at,
        expected_feedback_at=row.expected_feedback_at,
        feedback_at=row.feedback_at,
        created_by=row.created_by,
    )


@router.get("/clues/{clue_id}/transfers", response_model=list[TransferOut], responses={**ERRORS, **NOT_FOUND})
async def list_transfers(clue_id: str, principal: CurrentStaff, session: SessionDep) -> list[TransferOut]:
    """Every hand-off (to a unit, another organ, investigation, or an out-of-scope referral)."""
    rows = await routing.list_transfers(session, clue_id=clue_id, principal=principal)
    return [_transfer_out(r) for r in rows]


@router.post(
    "/clues/{clue_id}/transfers/{transfer_id}/feedback",
    response_model=TransferOut,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
async def transfer_feedback(
    clue_id: str,
    transfer_id: str,
    principal: Annotated[Principal, authorized(Action.decide_clue)],
    session: SessionDep,
) -> TransferOut:
    """Record that the receiving unit or organ reported back (audited; late if after the expected date)."""
    row = await routing.record_transfer_feedback(
        session, clue_id=clue_id, transfer_id=transfer_id, principal=principal
    )
    return _transfer_out(row)


@router.post("/clues/{clue_id}/notes", status_code=201, responses={**ERRORS, **NOT_FOUND})
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
    return _transition_out(row)


@router.put("/clues/{clue_id}/supervision", responses={**ERRORS, **NOT_FOUND})
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
    "/clues/{clue_id}/acceptance-notice", status_code=201, responses={**ERRORS, **NOT_FOUND, **CONFLICT}
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


@router.get("/supervision", responses=ERRORS)
async def supervision_list(
    principal: Annotated[Principal, authorized(Action.supervise_clue)], session: SessionDep
) -> list[dict[str, object]]:
    """Open key clues and clues with an overdue notice (催办单)."""
    return await supervision.supervision_list(session, principal=principal)


@router.post("/reminders/scan", responses=ERRORS)
async def scan_reminders(
    principal: Annotated[Principal, authorized(Action.supervise_clue)], session: SessionDep
) -> dict[str, int]:
    """Issue overdue notices now (the daily job does the same)."""
    return {"issued": await supervision.issue_overdue_reminders(session)}


@router.post(
    "/clues/{clue_id}/progress-requests", status_code=201, responses={**ERRORS, **NOT_FOUND, **CONFLICT}
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


@router.get("/clues/{clue_id}/progress-requests", responses={**ERRORS, **NOT_FOUND})
async def list_progress(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.report_progress)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[dict[str, object]]:
    return await supervision.list_progress(session, clue_id=clue_id, principal=principal, runtime=runtime)


@router.post("/progress-requests/{request_id}/report", responses={**ERRORS, **NOT_FOUND, **CONFLICT})
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


@router.post("/clues/{clue_id}/consultations", status_code=201, responses={**ERRORS, **NOT_FOUND})
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


@router.get("/clues/{clue_id}/consultations", responses={**ERRORS, **NOT_FOUND})
async def list_consultations(
    clue_id: str,
    principal: Annotated[Principal, authorized(Action.record_consultation)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[dict[str, object]]:
    return await supervision.list_consultations(
        session, clue_id=clue_id, principal=principal, runtime=runtime
    )


@router.get("/clue-search", response_model=list[SearchHit], responses=ERRORS)
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
    return [SearchHit(**_summary(c).model_dump(), same_accused_count=n) for c, n in hits]


@router.get("/clues/{clue_id}/related", responses={**ERRORS, **NOT_FOUND})
async def related_clues(
    clue_id: str, principal: Annotated[Principal, authorized(Action.search_clues)], session: SessionDep
) -> dict[str, object]:
    """Other clues about the same accused person, and near-duplicate texts (linked, never merged)."""
    return await classification_service.related_clues(session, clue_id=clue_id, principal=principal)


# --- Ledger export, statistics, the meeting brief (issue 8) ------------------------------------------


def _file_response(export: ledger.ExportFile) -> FileResponse:
    return FileResponse(
        export.path,
        media_type=export.media_type,
        filename=export.filename,
        headers={"Cache-Control": "no-store", "X-Row-Count": str(export.rows)},
        background=BackgroundTask(export.cleanup),
    )


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/ledger.{fmt}",
    response_class=FileResponse,
    responses={
        **ERRORS,
        200: {
            "description": "The ledger as xlsx or CSV (UTF-8 with BOM)",
            "content": {XLSX: {}, "text/csv": {}},
        },
    },
)
async def export_ledger(
    fmt: Annotated[str, Path(pattern="^(xlsx|csv)$")],
    principal: Annotated[Principal, authorized(Action.export_ledger)],
    session: SessionDep,
    runtime: RuntimeDep,
    status: Status = None,
    category: Category = None,
    source: Source = None,
    channel: Channel = None,
    unit_id: Annotated[str | None, Query(max_length=36)] = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> FileResponse:
    """The ledger with the domain's columns, newest first. Never any submitter detail. Audited."""
    filters = registry_service.ClueFilters(
        status=status,
        category=category,
        source=source,
        channel=channel,
        unit_id=unit_id,
        received_from=received_from,
        received_to=received_to,
    )
    export = await ledger.export_ledger(
        session, filters=filters, fmt=fmt, principal=principal, keys=runtime.keys
    )
    return _file_response(export)


@router.get("/stats/overview", responses=ERRORS)
async def stats_overview(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: SessionDep,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> dict[str, object]:
    """Counts by status, source, channel, category and handling unit."""
    return await stats.overview(session, received_from=received_from, received_to=received_to)


@router.get("/stats/trends", responses=ERRORS)
async def stats_trends(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: SessionDep,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> dict[str, object]:
    """Clues per month and handling times (days from receipt to conclusion)."""
    return await stats.trends(session, received_from=received_from, received_to=received_to)


@router.get("/stats/quarterly", responses=ERRORS)
async def stats_quarterly(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: SessionDep,
    year: Annotated[int, Query(ge=2000, le=2100)],
    quarter: Annotated[int, Query(ge=1, le=4)],
) -> dict[str, object]:
    """The quarterly results report: received, disposed, concluded, referred, overdue, handling times."""
    return await stats.quarterly(session, year=year, quarter=quarter)


@router.get("/stats/overdue", responses=ERRORS)
async def stats_overdue(
    principal: Annotated[Principal, authorized(Action.view_statistics)], session: SessionDep
) -> dict[str, object]:
    """Overdue and at-risk open clues per unit and handler."""
    return await stats.overdue_by_unit_and_handler(session)


def _brief_range(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start or (end - start).days > 366 or start.year < 1900 or end.year > 9000:  # no overflow
        raise Invalid("日期范围无效（最长一年）", message_en="invalid date range (at most a year)")
    return (
        datetime.combine(start, time.min, tzinfo=LOCAL),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=LOCAL),
    )


@router.get("/brief", responses=ERRORS)
async def meeting_brief(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: SessionDep,
    start: date,
    end: date,
) -> dict[str, object]:
    """The regular meeting's brief: new, overdue, key and difficult clues (dates inclusive, local)."""
    first, last = _brief_range(start, end)
    return await brief.meeting_brief(session, start=first, end=last)


@router.get(
    "/brief.xlsx",
    response_class=FileResponse,
    responses={
        **ERRORS,
        200: {"description": "The meeting brief, one sheet per section", "content": {XLSX: {}}},
    },
)
async def meeting_brief_xlsx(
    principal: Annotated[Principal, authorized(Action.export_ledger)],
    session: SessionDep,
    start: date,
    end: date,
) -> FileResponse:
    first, last = _brief_range(start, end)
    return _file_response(await brief.brief_xlsx(session, start=first, end=last, principal=principal))


# --- Transfer requests (handlers ask, supervisors decide) ---------------------------------------------


class TransferRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_unit_id: str = Field(max_length=36)
    reason: str = Field(min_length=1, max_length=5000)


class TransferDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    reason: str = Field(min_length=1, max_length=5000)
    document_number: str | None = Field(default=None, max_length=100)
    expected_feedback_on: date | None = None


class DocumentOut(BaseModel):
    id: str = Field(description="The attachment record; download with GET /api/v1/attachments/{id}")


class TransferRequestOut(BaseModel):
    id: str
    clue_id: str
    requester_id: str
    to_unit_id: str
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


@router.post(
    "/clues/{clue_id}/transfer-requests",
    status_code=201,
    response_model=TransferRequestOut,
    responses={**ERRORS, **NOT_FOUND, 409: {"description": "A request for this clue is already pending"}},
)
async def request_transfer(
    clue_id: str,
    body: TransferRequestIn,
    principal: Annotated[Principal, authorized(Action.request_transfer)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TransferRequestOut:
    """The clue's handler asks for it to go to another unit (the reason is sealed). Audited."""
    row = await transfer_requests.request_transfer(
        session,
        clue_id=clue_id,
        to_unit_id=body.to_unit_id,
        reason=body.reason,
        principal=principal,
        runtime=runtime,
    )
    return TransferRequestOut(**transfer_requests.summary(row))


@router.get("/transfer-requests", response_model=list[TransferRequestOut], responses=ERRORS)
async def pending_transfer_requests(
    principal: Annotated[Principal, authorized(Action.decide_clue)], session: SessionDep
) -> list[TransferRequestOut]:
    """Requests waiting for a supervisor's decision, oldest first."""
    return [
        TransferRequestOut(**transfer_requests.summary(r))
        for r in await transfer_requests.list_pending(session)
    ]


@router.post(
    "/transfer-requests/{request_id}/decision",
    response_model=TransferRequestOut,
    responses={**ERRORS, 404: {"description": "No such request"}, **CONFLICT},
)
async def decide_transfer_request(
    request_id: str,
    body: TransferDecisionIn,
    principal: Annotated[Principal, authorized(Action.decide_clue)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TransferRequestOut:
    """Approve (the transfer step is applied, with recusal and the status rules) or refuse. Audited."""
    row = await transfer_requests.decide(
        session,
        request_id=request_id,
        decision=transfer_requests.Decision(
            approve=body.approve,
            reason=body.reason,
            document_number=body.document_number,
            expected_feedback_on=body.expected_feedback_on,
        ),
        principal=principal,
        runtime=runtime,
    )
    return TransferRequestOut(**transfer_requests.summary(row))


@router.post(
    "/clues/{clue_id}/documents",
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
