"""Registry API: Ledger export, statistics, the meeting brief."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from service.api.registry.common import (
    ERRORS,
    Category,
    Channel,
    Source,
    Status,
)
from service.auth.permissions import Action
from service.auth.service import Principal
from service.http.deps import ReadSessionDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import authorized
from service.platform.errors import Invalid
from service.platform.timeutil import LOCAL
from service.registry import (
    brief,
    ledger,
    stats,
)
from service.registry import service as registry_service

router = APIRouter(prefix="/api/v1", tags=["clues"], responses=STAFF_ERRORS)


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
    summary="Export the ledger (xlsx or CSV)",
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
    read_session: ReadSessionDep,
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
        session, filters=filters, fmt=fmt, principal=principal, read_session=read_session
    )
    return _file_response(export)


@router.get(
    "/stats/overview", summary="Counts by status, source, channel, category and unit", responses=ERRORS
)
async def stats_overview(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: ReadSessionDep,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> dict[str, object]:
    """Counts by status, source, channel, category and handling unit."""
    return await stats.overview(session, received_from=received_from, received_to=received_to)


@router.get("/stats/trends", summary="Clues per month and handling times", responses=ERRORS)
async def stats_trends(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: ReadSessionDep,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> dict[str, object]:
    """Clues per month and handling times (days from receipt to conclusion)."""
    return await stats.trends(session, received_from=received_from, received_to=received_to)


@router.get("/stats/quarterly", summary="Quarterly results report", responses=ERRORS)
async def stats_quarterly(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: ReadSessionDep,
    year: Annotated[int, Query(ge=2000, le=2100)],
    quarter: Annotated[int, Query(ge=1, le=4)],
) -> dict[str, object]:
    """The quarterly results report: received, disposed, concluded, referred, overdue, handling times."""
    return await stats.quarterly(session, year=year, quarter=quarter)


@router.get("/stats/overdue", summary="Overdue and at-risk clues per unit and handler", responses=ERRORS)
async def stats_overdue(
    principal: Annotated[Principal, authorized(Action.view_statistics)], session: ReadSessionDep
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


@router.get("/brief", summary="Meeting brief", responses=ERRORS)
async def meeting_brief(
    principal: Annotated[Principal, authorized(Action.view_statistics)],
    session: ReadSessionDep,
    start: date,
    end: date,
) -> dict[str, object]:
    """The regular meeting's brief: new, overdue, key and difficult clues (dates inclusive, local)."""
    first, last = _brief_range(start, end)
    return await brief.meeting_brief(session, start=first, end=last)


@router.get(
    "/brief.xlsx",
    summary="Meeting brief as a spreadsheet",
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
