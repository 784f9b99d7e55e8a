"""Staff console pages for the registry: the ledger (filter, count, page on, export), an investigator's
desk (我的线索), transfer requests to decide, the meeting brief and the supervision list. One clue's page
and its forms are in ``clue_pages`` (included here). Server-rendered in Chinese (or English, by the switch),
no JavaScript, behind the staff session login; every POST carries the CSRF token. Role checks are the API's
(``Action``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.background import BackgroundTask

from service.auth.permissions import Action, Role, is_allowed, require
from service.auth.service import Principal
from service.classification import classifier
from service.handoff import service as handoff_service
from service.http.deps import ReadSessionDep, RuntimeDep, SessionDep
from service.platform.errors import DomainError, Invalid
from service.platform.runtime import Runtime
from service.platform.timeutil import LOCAL, utcnow
from service.registry import brief, desk, lifecycle, supervision, transfer_requests
from service.registry import ledger as ledger_service
from service.registry import service as registry_service
from service.registry.ledger import CHANNEL_NAMES, SOURCE_NAMES
from service.registry.models import CHANNELS, SOURCES, Clue
from service.staff_site import clue_pages
from service.staff_site.clue_pages import category_names, names, people_with, unit_label
from service.staff_site.pages import render
from service.staff_site.session import CsrfProtected, CurrentStaffSession

router = APIRouter(prefix="/staff/registry", include_in_schema=False)
router.include_router(clue_pages.router)
PAGE_SIZE = 50
DUE_NAMES = {"overdue": "已超期", "near": f"{desk.NEAR_DUE_DAYS}日内到期"}
_category_names = category_names  # the admin pages import these two from here


async def _people_with(session: Any, role: Role) -> list[tuple[str, str]]:
    return [(person_id, name) for person_id, name, _ in await people_with(session, role)]


def _day(value: str | None, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    if not 1900 <= day.year <= 9000:  # converting year 1 or 9999 to UTC would overflow
        return None
    moment = datetime.combine(day, time.max if end else time.min, tzinfo=LOCAL)
    return moment


def _ledger_filters(form: dict[str, str], now: datetime) -> registry_service.ClueFilters:
    """The ledger's filters from the page's query (unknown values are ignored, as absurd dates are)."""
    open_only = form["assign"] == "none"
    unassigned: dict[str, Any] = {"unassigned": True, "statuses": desk.OPEN} if open_only else {}
    return registry_service.ClueFilters(
        status=form["status"] or None,
        category=form["category"] or None,
        source=form["source"] if form["source"] in SOURCES else None,
        channel=form["channel"] if form["channel"] in CHANNELS else None,
        received_from=_day(form["received_from"]),
        received_to=_day(form["received_to"], end=True),
        **{**unassigned, **desk.due_window(form["due"] or None, now)},
    )


LedgerQuery = dict[str, str]


def _ledger_form(
    status: str | None,
    category: str | None,
    source: str | None,
    channel: str | None,
    received_from: str | None,
    received_to: str | None,
    due: str | None,
    assign: str | None,
) -> LedgerQuery:
    return {
        "status": status or "",
        "category": category or "",
        "source": source or "",
        "channel": channel or "",
        "received_from": received_from or "",
        "received_to": received_to or "",
        "due": due if due in desk.DUE_KINDS else "",
        "assign": "none" if assign == "none" else "",
    }


async def _rows(session: Any, clues: list[Clue], now: datetime) -> list[dict[str, Any]]:
    units, staff = await names(session)
    categories = category_names()
    states = await desk.states_of(session, [c.id for c in clues])
    return [
        {
            "clue": c,
            "status_name": lifecycle.STATUS_NAMES.get(c.status, c.status),
            "categories": sorted(categories.get(x.category, x.category) for x in c.categories),
            "unit": units.get(c.handling_unit_id or "", ""),  # a name: data, shown as it is
            "no_unit": unit_label(c.status, ""),  # the words for none, translated
            "handler": staff.get(c.assignee_id or "", ""),
            "key": bool(states.get(c.id) and states[c.id].key_clue),
            "channel": CHANNEL_NAMES.get(c.channel, c.channel),
            "due": desk.due_state(c, states.get(c.id), now),
        }
        for c in clues
    ]


def _query_string(form: LedgerQuery) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in form.items() if v})


@router.get("")
async def ledger_page(
    request: Request,
    principal: CurrentStaffSession,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    category: Annotated[str | None, Query(max_length=48)] = None,
    source: Annotated[str | None, Query(max_length=24)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    received_from: Annotated[str | None, Query(max_length=10)] = None,
    received_to: Annotated[str | None, Query(max_length=10)] = None,
    due: Annotated[str | None, Query(max_length=10)] = None,
    assign: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    shown: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The ledger: every clue, newest first, filterable, with the result count; 50 a page."""
    require(principal.roles, Action.list_all_clues)
    now = utcnow()
    form = _ledger_form(status, category, source, channel, received_from, received_to, due, assign)
    filters = _ledger_filters(form, now)
    page = await registry_service.list_all(session, filters=filters, limit=PAGE_SIZE, cursor=cursor or None)
    total = await registry_service.count_clues(session, filters=filters)
    query = _query_string(form)
    return render(
        request,
        "registry_ledger.html",
        {
            "rows": await _rows(session, page.items, now),
            "form": form,
            "total": total,
            "first": shown + 1 if page.items else 0,
            "last": shown + len(page.items),
            "next_cursor": page.next_cursor,
            "next_shown": shown + len(page.items),
            "paged": bool(cursor),
            "query": query,
            "statuses": list(lifecycle.STATUS_NAMES.items()),
            "sources": list(SOURCE_NAMES.items()),
            "channels": list(CHANNEL_NAMES.items()),
            "categories": [(c.id, c.name) for c in classifier.current_taxonomy().categories],
            "due_names": list(DUE_NAMES.items()),
            "can_export": is_allowed(principal.roles, Action.export_ledger),
        },
        principal=principal,
    )


def _download(export: ledger_service.ExportFile) -> FileResponse:
    return FileResponse(
        export.path,
        media_type=export.media_type,
        filename=export.filename,
        headers={"Cache-Control": "no-store", "X-Row-Count": str(export.rows)},
        background=BackgroundTask(export.cleanup),
    )


@router.get("/ledger.{fmt}")
async def ledger_export(
    principal: CurrentStaffSession,
    session: SessionDep,
    read_session: ReadSessionDep,
    fmt: Annotated[str, Path(pattern="^(xlsx|csv)$")],
    status: Annotated[str | None, Query(max_length=16)] = None,
    category: Annotated[str | None, Query(max_length=48)] = None,
    source: Annotated[str | None, Query(max_length=24)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    received_from: Annotated[str | None, Query(max_length=10)] = None,
    received_to: Annotated[str | None, Query(max_length=10)] = None,
    due: Annotated[str | None, Query(max_length=10)] = None,
    assign: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The ledger as on the page (same filters), as xlsx or CSV, with the staff session. Audited."""
    require(principal.roles, Action.export_ledger)
    form = _ledger_form(status, category, source, channel, received_from, received_to, due, assign)
    export = await ledger_service.export_ledger(
        session,
        filters=_ledger_filters(form, utcnow()),
        fmt=fmt,
        principal=principal,
        read_session=read_session,
    )
    return _download(export)


@router.get("/mine")
async def my_clues(
    request: Request,
    principal: CurrentStaffSession,
    session: SessionDep,
    due: Annotated[str | None, Query(max_length=10)] = None,
    show: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """我的线索: the clues assigned to the caller, soonest deadline first, overdue and near due marked;
    the open ones unless ``show=all``."""
    require(principal.roles, Action.list_assigned_clues)
    now = utcnow()
    due = due if due in desk.DUE_KINDS else None
    show_all = show == "all" and not due
    scope: dict[str, Any] = {} if show_all else {"statuses": desk.OPEN}
    filters = registry_service.ClueFilters(**{**scope, **desk.due_window(due, now)})
    page = await registry_service.list_assigned(
        session, assignee_id=principal.staff_id, filters=filters, limit=PAGE_SIZE, cursor=cursor or None
    )
    total = await registry_service.count_clues(session, filters=filters, assignee_id=principal.staff_id)
    return render(
        request,
        "registry_mine.html",
        {
            "rows": await _rows(session, page.items, now),
            "total": total,
            "due": due or "",
            "show_all": show_all,
            "due_names": list(DUE_NAMES.items()),
            "next_cursor": page.next_cursor,
        },
        principal=principal,
    )


@router.get("/transfer-requests")
async def transfer_requests_page(
    request: Request, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Transfer requests waiting for a supervisor's decision, oldest first."""
    require(principal.roles, Action.decide_clue)
    done = ("已处理。", "Decided.") if request.query_params.get("done") else None
    return await _transfer_requests(request, principal, session, runtime, done, "ok", 200)


async def _transfer_requests(
    request: Request,
    principal: Principal,
    session: Any,
    runtime: Runtime,
    message: tuple[str, str] | None,
    message_class: str,
    status_code: int,
) -> Response:
    units, staff = await names(session)
    pending = await transfer_requests.pending_with_reasons(session, principal=principal, runtime=runtime)
    clue_ids = [view.row.clue_id for view in pending]
    query = select(Clue.id, Clue.registry_number).where(Clue.id.in_(clue_ids))
    numbers = dict((await session.execute(query)).all()) if clue_ids else {}
    items = [
        {
            "row": view.row,
            "reason": view.reason,
            "predates": view.predates,
            "number": numbers.get(view.row.clue_id, ""),
            "requester": staff.get(view.row.requester_id, ""),
            "unit": units.get(view.row.to_unit_id, ""),
        }
        for view in pending
    ]
    return render(
        request,
        "registry_transfer_requests.html",
        {"items": items, "message": message, "message_class": message_class},
        principal=principal,
        status_code=status_code,
    )


@router.post("/transfer-requests/{request_id}")
async def decide_transfer_request(
    request_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    decision: Annotated[str, Form(max_length=8)] = "",
    reason: Annotated[str, Form(max_length=5000)] = "",
    document_number: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Approve (the transfer step is applied, recusal and status rules included) or refuse. Audited."""
    require(principal.roles, Action.decide_clue)
    try:
        if decision not in ("approve", "refuse"):
            raise Invalid("请选择批准或不批准", message_en="approve or refuse")
        await handoff_service.decide_transfer_request(
            session,
            request_id=request_id[:36],
            decision=transfer_requests.Decision(
                approve=decision == "approve",
                reason=reason,
                document_number=document_number.strip() or None,
            ),
            principal=principal,
            runtime=runtime,
        )
    except DomainError as exc:
        await session.rollback()
        message = (exc.message, exc.message_en)
        return await _transfer_requests(
            request, principal, session, runtime, message, "error", exc.status_code
        )
    return RedirectResponse("/staff/registry/transfer-requests?done=1", status_code=303)


@router.get("/brief")
async def brief_page(
    request: Request,
    principal: CurrentStaffSession,
    session: SessionDep,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The regular meeting's brief as a printable page (new, overdue, key and difficult clues)."""
    require(principal.roles, Action.view_statistics)
    today = datetime.now(LOCAL).date()
    first = _day(start) or datetime.combine(today.replace(day=1), time.min, tzinfo=LOCAL)
    last_day = _day(end, end=True) or datetime.combine(today, time.max, tzinfo=LOCAL)
    message = None
    if last_day < first or (last_day - first).days > 366:
        message = ("日期范围无效（最长一年）。", "Invalid date range (at most a year).")
        first, last_day = (
            datetime.combine(today, time.min, tzinfo=LOCAL),
            datetime.combine(today, time.max, tzinfo=LOCAL),
        )
    data = await brief.meeting_brief(session, start=first, end=last_day)
    return render(
        request,
        "registry_brief.html",
        {
            "brief": data,
            "sections": brief.SECTIONS,
            "form": {"start": first.date().isoformat(), "end": last_day.date().isoformat()},
            "message": message,
            "can_export": is_allowed(principal.roles, Action.export_ledger),
        },
        principal=principal,
    )


@router.get("/supervision")
async def supervision_page(request: Request, principal: CurrentStaffSession, session: SessionDep) -> Response:
    """Open key clues and overdue clues with their leaders, handlers and alert levels."""
    require(principal.roles, Action.supervise_clue)
    items = await supervision.supervision_list(session, principal=principal)
    units, staff = await names(session)
    for item in items:
        item["unit"] = units.get(item["handling_unit_id"] or "", "")
        item["handler"] = staff.get(item["assignee_id"] or "", "")
        item["leader"] = staff.get(item["supervising_leader_id"] or "", "")
        item["status_name"] = lifecycle.STATUS_NAMES.get(item["status"], item["status"])
    return render(request, "registry_supervision.html", {"items": items}, principal=principal)


@router.get("/brief.xlsx")
async def brief_export(
    principal: CurrentStaffSession,
    session: SessionDep,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The meeting brief as xlsx (one sheet per section), with the staff session. Audited."""
    require(principal.roles, Action.export_ledger)
    first, last = _day(start), _day(end, end=True)
    if first is None or last is None or last < first or (last - first).days > 366:
        raise Invalid("日期范围无效（最长一年）", message_en="invalid date range (at most a year)")
    # The brief's end is exclusive: the day after the last one, at midnight.
    until = datetime.combine(last.date() + timedelta(days=1), time.min, tzinfo=LOCAL)
    return _download(await brief.brief_xlsx(session, start=first, end=until, principal=principal))
