"""Staff console pages for the registry: the ledger (filter, page on), a clue's page with its history,
assignment, key-clue supervision and lifecycle steps. Server-rendered Chinese, no JavaScript, behind the
staff session login; every POST carries the CSRF token. Role checks are the API's (``Action``)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from service.auth.models import Staff, StaffRole, Unit
from service.auth.permissions import Action, Role, is_allowed, require
from service.auth.service import Principal
from service.classification import classifier
from service.http.deps import RuntimeDep, SessionDep
from service.platform.errors import DomainError, Invalid
from service.platform.timeutil import LOCAL
from service.registry import brief, lifecycle, supervision
from service.registry import service as registry_service
from service.registry.ledger import CHANNEL_NAMES, METHOD_NAMES, SOURCE_NAMES
from service.registry.models import CHANNELS, SOURCES, ClueState
from service.staff_site.pages import render
from service.staff_site.session import CsrfProtected, CurrentStaffSession

router = APIRouter(prefix="/staff/registry", include_in_schema=False)

ACTION_NAMES = {
    "triage": "分办",
    "refer": "转出（不属于受理范围）",
    "transfer": "移交承办单位",
    "accept": "受理核查",
    "dispose": "处置",
    "send_on": "移送",
    "reopen": "重新启动",
    "conclude": "办结",
    "archive": "归档",
    "reassign": "改派",
    "supervision": "督办设置",
}


def _category_names() -> dict[str, str]:
    return {
        c.id: c.name.split("(")[0].split("（")[0].strip()
        for c in classifier.current_taxonomy().categories
    }


async def _names(session: Any) -> tuple[dict[str, str], dict[str, str]]:
    units = dict((await session.execute(select(Unit.id, Unit.name))).all())
    staff = dict((await session.execute(select(Staff.id, Staff.name))).all())
    return units, staff


async def _people_with(session: Any, role: Role) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(Staff.id, Staff.name)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == role.value, Staff.disabled.is_(False))
        .order_by(Staff.name)
    )
    return [(r.id, r.name) for r in rows.all()]


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
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The ledger: every clue, newest first, filterable; 50 a page."""
    require(principal.roles, Action.list_all_clues)
    form = {
        "status": status or "",
        "category": category or "",
        "source": source or "",
        "channel": channel or "",
        "received_from": received_from or "",
        "received_to": received_to or "",
    }
    filters = registry_service.ClueFilters(
        status=status or None,
        category=category or None,
        source=source if source in SOURCES else None,
        channel=channel if channel in CHANNELS else None,
        received_from=_day(received_from),
        received_to=_day(received_to, end=True),
    )
    page = await registry_service.list_all(session, filters=filters, limit=50, cursor=cursor or None)
    units, staff = await _names(session)
    category_names = _category_names()
    ids = [c.id for c in page.items]
    states = {
        s.clue_id: s
        for s in (await session.execute(select(ClueState).where(ClueState.clue_id.in_(ids)))).scalars()
    }
    rows = [
        {
            "clue": c,
            "status_name": lifecycle.STATUS_NAMES.get(c.status, c.status),
            "categories": "、".join(sorted(category_names.get(x.category, x.category) for x in c.categories)),
            "unit": units.get(c.handling_unit_id or "", ""),
            "handler": staff.get(c.assignee_id or "", ""),
            "key": bool(states.get(c.id) and states[c.id].key_clue),
            "channel": CHANNEL_NAMES.get(c.channel, c.channel),
        }
        for c in page.items
    ]
    query = "&".join(f"{k}={v}" for k, v in form.items() if v)
    return render(
        request,
        "registry_ledger.html",
        {
            "rows": rows,
            "form": form,
            "next_cursor": page.next_cursor,
            "query": query,
            "statuses": list(lifecycle.STATUS_NAMES.items()),
            "sources": list(SOURCE_NAMES.items()),
            "channels": list(CHANNEL_NAMES.items()),
            "categories": [(c.id, c.name) for c in classifier.current_taxonomy().categories],
            "can_export": is_allowed(principal.roles, Action.export_ledger),
        },
        principal=principal,
    )


async def _clue_page(
    request: Request,
    principal: Principal,
    session: Any,
    runtime: Any,
    clue_id: str,
    *,
    message: tuple[str, str] | None = None,
    message_class: str = "error",
    status_code: int = 200,
) -> Response:
    view = await registry_service.read_clue(session, clue_id=clue_id, principal=principal, keys=runtime.keys)
    clue = view.clue
    history = await lifecycle.history(session, clue_id=clue.id, principal=principal, runtime=runtime)
    state = await session.get(ClueState, clue.id)
    units, staff = await _names(session)
    may_decide = is_allowed(principal.roles, Action.decide_clue)
    return render(
        request,
        "registry_clue.html",
        {
            "view": view,
            "clue": clue,
            "state": state,
            "status_name": lifecycle.STATUS_NAMES.get(clue.status, clue.status),
            "category_names": "、".join(
                sorted(_category_names().get(c.category, c.category) for c in clue.categories)
            ),
            "source": SOURCE_NAMES.get(clue.source, clue.source),
            "channel": CHANNEL_NAMES.get(clue.channel, clue.channel),
            "unit": units.get(clue.handling_unit_id or "", ""),
            "handler": staff.get(clue.assignee_id or "", ""),
            "leader": staff.get((state.supervising_leader_id if state else None) or "", ""),
            "method": METHOD_NAMES.get((state.disposal_method if state else None) or "", ""),
            "history": [
                {
                    "entry": e,
                    "name": ACTION_NAMES.get(e.transition.action, e.transition.action),
                    "actor": staff.get(e.transition.actor.removeprefix("staff:"), e.transition.actor),
                    "approver": staff.get(e.transition.approver_id or "", ""),
                }
                for e in history
            ],
            "actions": [
                (a, ACTION_NAMES[a])
                for a in lifecycle.allowed_actions(clue.status, state.disposal_method if state else None)
            ],
            "investigators": await _people_with(session, Role.investigator) if may_decide else [],
            "supervisors": await _people_with(session, Role.supervisor),
            "may_decide": may_decide,
            "may_supervise": is_allowed(principal.roles, Action.supervise_clue),
            "methods": list(lifecycle.DISPOSAL_METHODS.items()),
            "findings": list(lifecycle.FINDINGS.items()),
            "targets": [(k, v[0]) for k, v in lifecycle.REFERRAL_TARGETS.items()],
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/clues/{clue_id}")
async def clue_page(
    clue_id: str, request: Request, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """One clue: content (audited read), ledger facts, whole history, and the forms for the next step."""
    done = request.query_params.get("done")
    message = (("已保存。", "Saved."), "ok") if done else (None, "error")
    return await _clue_page(
        request, principal, session, runtime, clue_id, message=message[0], message_class=message[1]
    )


async def _after(
    request: Request, principal: Principal, session: Any, runtime: Any, clue_id: str, work: Any
) -> Response:
    """Run a change; on a domain error show the page again with the message (and change nothing)."""
    try:
        await work()
    except DomainError as exc:
        await session.rollback()
        return await _clue_page(
            request,
            principal,
            session,
            runtime,
            clue_id,
            message=(exc.message, exc.message_en),
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/staff/registry/clues/{clue_id}?done=1", status_code=303)


@router.post("/clues/{clue_id}/assign")
async def assign(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    assignee_id: Annotated[str, Form(max_length=36)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    async def work() -> None:
        require(principal.roles, Action.assign_clue)

        clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
        if clue.assignee_id and reason.strip():
            await lifecycle.reassign_clue(
                session,
                clue_id=clue_id,
                assignee_id=assignee_id,
                reason=reason,
                principal=principal,
                runtime=runtime,
            )
        else:
            await registry_service.assign_clue(
                session,
                clue_id=clue_id,
                assignee_id=assignee_id,
                principal=principal,
                keys=runtime.keys,
                runtime=runtime,
            )

    return await _after(request, principal, session, runtime, clue_id, work)


@router.post("/clues/{clue_id}/supervision")
async def supervise(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    reason: Annotated[str, Form(max_length=2000)],
    leader_id: Annotated[str, Form(max_length=36)] = "",
    key_clue: Annotated[str, Form(max_length=8)] = "",
    leader_takes_case: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    async def work() -> None:
        require(principal.roles, Action.supervise_clue)
        await supervision.set_supervision(
            session,
            clue_id=clue_id,
            key_clue=bool(key_clue),
            leader_id=leader_id or None,
            leader_takes_case=bool(leader_takes_case),
            reason=reason,
            principal=principal,
            runtime=runtime,
        )

    return await _after(request, principal, session, runtime, clue_id, work)


@router.post("/clues/{clue_id}/transition")
async def transition(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    action: Annotated[str, Form(max_length=24)],
    reason: Annotated[str, Form(max_length=5000)],
    approver_id: Annotated[str, Form(max_length=36)] = "",
    decision_on: Annotated[str, Form(max_length=10)] = "",
    method: Annotated[str, Form(max_length=24)] = "",
    target: Annotated[str, Form(max_length=100)] = "",
    finding: Annotated[str, Form(max_length=16)] = "",
    summary: Annotated[str, Form(max_length=5000)] = "",
    feedback: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    async def work() -> None:
        try:
            decided = date.fromisoformat(decision_on) if decision_on else None
        except ValueError:
            raise Invalid(
                "集体研究日期格式应为 YYYY-MM-DD", message_en="decision_on must be YYYY-MM-DD"
            ) from None
        await lifecycle.apply_transition(
            session,
            clue_id=clue_id,
            request=lifecycle.TransitionRequest(
                action=action,
                reason=reason,
                approver_id=approver_id or None,
                decision_on=decided,
                method=method or None,
                target=target or None,
                finding=finding or None,
                summary=summary or None,
                feedback=feedback or None,
            ),
            principal=principal,
            runtime=runtime,
        )

    return await _after(request, principal, session, runtime, clue_id, work)


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
    units, staff = await _names(session)
    for item in items:
        item["unit"] = units.get(item["handling_unit_id"] or "", "")
        item["handler"] = staff.get(item["assignee_id"] or "", "")
        item["leader"] = staff.get(item["supervising_leader_id"] or "", "")
        item["status_name"] = lifecycle.STATUS_NAMES.get(item["status"], item["status"])
    return render(request, "registry_supervision.html", {"items": items}, principal=principal)
