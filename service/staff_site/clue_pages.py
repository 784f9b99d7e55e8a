"""One clue in the staff console: everything the reporter gave, the conversation with the reporter, the
files, hotline additions, related clues, the whole history, and a form for each step open now.

Who sees what is the API's permission table (``Action``) and the registry's visibility rule (a supervisor:
any clue; an investigator: the clues assigned to them; anyone else: 404). Every read of sealed content is
audited by the domain function that opens it (``read_clue``, ``history``, ``staff_list``,
``list_additions``, ``list_progress``, ``open_download``), exactly as through the API. Forms work without
JavaScript; every POST carries the CSRF token; a refused change shows the page again with the reason and
changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from service.attachments import service as attachments_service
from service.attachments.models import Attachment
from service.auth.models import Staff, StaffRole, Unit
from service.auth.permissions import Action, Role, is_allowed, require
from service.auth.service import Principal
from service.classification import classifier
from service.classification import service as classification_service
from service.http.deps import RuntimeDep, SessionDep
from service.intake import assisted as hotline_service
from service.messages import service as messages_service
from service.messages.models import FROM_REPORTER
from service.platform.errors import DomainError, Invalid
from service.platform.runtime import Runtime
from service.platform.timeutil import LOCAL, utcnow
from service.registry import desk, lifecycle, routing, supervision, transfer_requests
from service.registry import service as registry_service
from service.registry.ledger import CHANNEL_NAMES, METHOD_NAMES, SOURCE_NAMES
from service.registry.models import Clue, ClueState
from service.staff_site.pages import DEFAULT_LANG, lang_of, render, translate
from service.staff_site.session import CsrfProtected, CurrentStaffSession

router = APIRouter(include_in_schema=False)  # included by registry_pages under /staff/registry

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
    "note": "工作记录",
}
# What each step asks for, beyond its reason: one form per step, only its own fields.
STEP_FIELDS = {
    "triage": (),
    "refer": ("target", "document_number"),
    "transfer": ("to_unit_id", "document_number", "expected_feedback_on"),
    "accept": (),
    "dispose": ("method", "approver_id", "decision_on"),
    "send_on": ("kind", "organ", "document_number", "expected_feedback_on", "approver_id", "decision_on"),
    "reopen": (),
    "conclude": (
        "finding",
        "summary",
        "feedback",
        "approver_id",
        "decision_on",
        "clearing_record",
        "false_report_note",
    ),
    "archive": (),
}
ADDITION_NAMES = {
    hotline_service.CALL_RECORD: "来电记录",
    hotline_service.OPERATOR_ADDITION: "再次来电补充",
    hotline_service.CALLER_CONFIRMATION: "来电人确认或更正",
}
TRANSFER_KINDS = {
    "unit": "移交承办单位",
    "organ": "移交其他机关",
    "investigation": "移送审查调查",
    "referral": "转出",
}
GROUP_NAMES = {"handling": "承办单位：%(unit)s", "none": "未定单位"}  # the assignee list's groups
VIEWABLE = ("image/jpeg", "image/png", "image/gif", "image/webp")  # shown in the browser; the rest download


def category_names() -> dict[str, str]:
    return {
        c.id: c.name.split("(")[0].split("（")[0].strip() for c in classifier.current_taxonomy().categories
    }


def unit_label(status: str, unit_name: str) -> str:
    """The handling unit in words that agree with the status: "未分办" only while the clue is registered."""
    if unit_name:
        return unit_name
    return "未分办" if status == lifecycle.Status.registered else "未指定承办单位"


async def names(session: Any) -> tuple[dict[str, str], dict[str, str]]:
    units = dict((await session.execute(select(Unit.id, Unit.name).order_by(Unit.name))).all())
    staff = dict((await session.execute(select(Staff.id, Staff.name))).all())
    return units, staff


async def people_with(session: Any, role: Role) -> list[tuple[str, str, str | None]]:
    """Active staff with ``role``: (id, name, unit id), by name."""
    rows = await session.execute(
        select(Staff.id, Staff.name, Staff.unit_id)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == role.value, Staff.disabled.is_(False))
        .order_by(Staff.name)
    )
    return [(r.id, r.name, r.unit_id) for r in rows.all()]


def grouped_investigators(
    people: list[tuple[str, str, str | None]],
    unit_id: str | None,
    units: dict[str, str],
    lang: str = DEFAULT_LANG,
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Investigators grouped by unit: the clue's handling unit first (marked), then the others by name."""
    by_unit: dict[str | None, list[tuple[str, str]]] = {}
    for person_id, name, person_unit in people:
        by_unit.setdefault(person_unit, []).append((person_id, name))
    order = sorted(by_unit, key=lambda u: (u != unit_id or u is None, u is None, units.get(u or "", "")))
    return [
        (
            translate(lang, GROUP_NAMES["handling"]) % {"unit": units.get(u, "")}
            if u and u == unit_id
            else (units.get(u, "") if u else translate(lang, GROUP_NAMES["none"])),
            by_unit[u],
        )
        for u in order
    ]


def may_take(principal: Principal, clue: Clue, action: str) -> bool:
    spec = lifecycle.TRANSITIONS[action]
    if is_allowed(principal.roles, Action.decide_clue):
        return True
    return (
        spec.kind is lifecycle.Kind.handle
        and is_allowed(principal.roles, Action.handle_clue)
        and clue.assignee_id == principal.staff_id
    )


def handles(principal: Principal, clue: Clue) -> bool:
    """The clue's handler, or a supervisor: may add notes, answer progress requests, send documents."""
    return is_allowed(principal.roles, Action.decide_clue) or (
        is_allowed(principal.roles, Action.handle_clue) and clue.assignee_id == principal.staff_id
    )


@dataclass
class PageMessage:
    text: tuple[str, str] | None = None
    css: str = "error"
    status_code: int = 200
    form: str = ""  # the form the message belongs to (its values are shown again)
    values: dict[str, str] | None = None


async def sealed_originals(session: Any, clue_id: str) -> set[str]:
    """Files whose received original is also kept, sealed to the identity key (never opened here)."""
    rows = await session.execute(
        select(Attachment.id).where(Attachment.clue_id == clue_id, Attachment.original_blob_id.is_not(None))
    )
    return set(rows.scalars())


async def clue_page_response(
    request: Request, principal: Principal, session: Any, runtime: Runtime, clue_id: str, note: PageMessage
) -> Response:
    roles = principal.roles
    view = await registry_service.read_clue(session, clue_id=clue_id, principal=principal, keys=runtime.keys)
    clue = view.clue
    history = await lifecycle.history(session, clue_id=clue.id, principal=principal, runtime=runtime)
    state = await session.get(ClueState, clue.id)
    units, staff = await names(session)
    method = state.disposal_method if state else None
    may_decide = is_allowed(roles, Action.decide_clue)
    messages = (
        await messages_service.staff_list(session, clue_id=clue.id, principal=principal, keys=runtime.keys)
        if is_allowed(roles, Action.exchange_messages)
        else []
    )
    files = (
        await attachments_service.list_attachments(session, clue_id=clue.id, principal=principal)
        if is_allowed(roles, Action.list_attachments)
        else []
    )
    additions = (
        await hotline_service.list_additions(session, clue_id=clue.id, runtime=runtime, actor=principal.actor)
        if clue.channel == "hotline"
        else []
    )
    related = (
        await classification_service.related_clues(session, clue_id=clue.id, principal=principal)
        if is_allowed(roles, Action.search_clues)
        else None
    )
    progress = (
        await supervision.list_progress(session, clue_id=clue.id, principal=principal, runtime=runtime)
        if is_allowed(roles, Action.report_progress)
        else []
    )
    transfers = await routing.list_transfers(session, clue_id=clue.id, principal=principal)
    pending_transfer = next(
        (r for r in await transfer_requests.list_pending(session) if r.clue_id == clue.id), None
    )
    steps = [
        (a, ACTION_NAMES[a], STEP_FIELDS[a])
        for a in lifecycle.allowed_actions(clue.status, method)
        if may_take(principal, clue, a)
    ]
    supervisors = [(i, n) for i, n, _ in await people_with(session, Role.supervisor)]
    file_names = {m.id: i for i, m in enumerate(messages, start=1)}
    now = utcnow()
    return render(
        request,
        "registry_clue.html",
        {
            "view": view,
            "clue": clue,
            "state": state,
            "status_name": lifecycle.STATUS_NAMES.get(clue.status, clue.status),
            "due": desk.due_state(clue, state, now),
            "category_names": sorted(category_names().get(c.category, c.category) for c in clue.categories),
            "hint_name": category_names().get(view.category_hint or "", view.category_hint or ""),
            "source": SOURCE_NAMES.get(clue.source, clue.source),
            "channel": CHANNEL_NAMES.get(clue.channel, clue.channel),
            "unit": units.get(clue.handling_unit_id or "", ""),  # a name: data, shown as it is
            "no_unit": unit_label(clue.status, ""),  # the words for none, translated
            "handler": staff.get(clue.assignee_id or "", ""),
            "leader": staff.get((state.supervising_leader_id if state else None) or "", ""),
            "method": METHOD_NAMES.get(method or "", ""),
            "finding": lifecycle.FINDINGS.get((state.finding if state else None) or "", ""),
            "history": [
                {
                    "entry": e,
                    "name": ACTION_NAMES.get(e.transition.action, e.transition.action),
                    "actor": staff.get(e.transition.actor.removeprefix("staff:"), e.transition.actor),
                    "approver": staff.get(e.transition.approver_id or "", ""),
                    "changed": e.transition.from_status != e.transition.to_status,
                    "to": lifecycle.STATUS_NAMES.get(e.transition.to_status, e.transition.to_status),
                }
                for e in history
            ],
            "messages": messages,
            "from_reporter": FROM_REPORTER,
            "may_message": is_allowed(roles, Action.exchange_messages),
            "files": files,
            "file_message": file_names,
            "sealed": await sealed_originals(session, clue.id) if files else set(),
            "viewable": VIEWABLE,
            "may_download": is_allowed(roles, Action.download_attachment),
            "additions": additions,
            "addition_names": ADDITION_NAMES,
            "related": related,
            "status_names": lifecycle.STATUS_NAMES,
            "channel_names": CHANNEL_NAMES,
            "progress": progress,
            "transfers": transfers,
            "transfer_kinds": TRANSFER_KINDS,
            "referral_names": lifecycle.REFERRAL_TARGETS,
            "pending_transfer": pending_transfer,
            "units": units,
            "staff": staff,
            "steps": steps,
            "may_decide": may_decide,
            "may_assign": is_allowed(roles, Action.assign_clue),
            "investigator_groups": grouped_investigators(
                await people_with(session, Role.investigator), clue.handling_unit_id, units, lang_of(request)
            )
            if is_allowed(roles, Action.assign_clue)
            else [],
            "may_supervise": is_allowed(roles, Action.supervise_clue),
            "handles": handles(principal, clue),
            "may_request_transfer": is_allowed(roles, Action.request_transfer)
            and clue.assignee_id == principal.staff_id
            and "transfer" in lifecycle.allowed_actions(clue.status, method),
            "supervisors": supervisors,
            "approvers": [(i, n) for i, n in supervisors if i != principal.staff_id],
            "methods": list(lifecycle.DISPOSAL_METHODS.items()),
            "send_on_kinds": list(lifecycle.SEND_ON_KINDS.items()),
            "findings": list(lifecycle.FINDINGS.items()),
            "targets": list(lifecycle.REFERRAL_TARGETS.items()),
            "back": "/staff/registry" if is_allowed(roles, Action.list_all_clues) else "/staff/registry/mine",
            "message": note.text,
            "message_class": note.css,
            "failed_form": note.form,
            "form": note.values or {},
            "today": now.astimezone(LOCAL).date().isoformat(),
        },
        principal=principal,
        status_code=note.status_code,
    )


@router.get("/clues/{clue_id}")
async def clue_page(
    clue_id: str, request: Request, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """One clue: content, conversation, files, additions, related clues and history (each read audited),
    and the forms for what the caller may do next."""
    saved = PageMessage(("已保存。", "Saved."), "ok") if request.query_params.get("done") else PageMessage()
    return await clue_page_response(request, principal, session, runtime, clue_id[:36], saved)


async def _after(
    request: Request,
    principal: Principal,
    session: Any,
    runtime: Runtime,
    clue_id: str,
    work: Callable[[], Awaitable[Any]],
    *,
    form: str,
    values: dict[str, str] | None = None,
    anchor: str = "",
) -> Response:
    """Run a change; on a domain error show the page again with the message and the form's values (the
    transaction is rolled back: nothing changed)."""
    try:
        await work()
    except DomainError as exc:
        await session.rollback()
        note = PageMessage((exc.message, exc.message_en), "error", exc.status_code, form, values)
        return await clue_page_response(request, principal, session, runtime, clue_id, note)
    return RedirectResponse(f"/staff/registry/clues/{clue_id}?done=1{anchor}", status_code=303)


@router.post("/clues/{clue_id}/assign")
async def assign(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    assignee_id: Annotated[str, Form(max_length=36)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    confirm_recusal: Annotated[bool, Form()] = False,
) -> Response:
    async def work() -> None:
        require(principal.roles, Action.assign_clue)
        if not assignee_id:
            raise Invalid("请选择承办人", message_en="choose an investigator")
        clue = await registry_service.get_visible_clue(session, clue_id=clue_id, principal=principal)
        if clue.assignee_id and reason.strip():
            await lifecycle.reassign_clue(
                session,
                clue_id=clue_id,
                assignee_id=assignee_id,
                reason=reason,
                principal=principal,
                runtime=runtime,
                confirm_recusal=confirm_recusal,
            )
        else:
            await registry_service.assign_clue(
                session,
                clue_id=clue_id,
                assignee_id=assignee_id,
                principal=principal,
                keys=runtime.keys,
                runtime=runtime,
                confirm_recusal=confirm_recusal,
            )

    return await _after(request, principal, session, runtime, clue_id, work, form="assign")


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

    return await _after(request, principal, session, runtime, clue_id, work, form="supervision")


def _date(value: str, label: tuple[str, str]) -> date | None:
    """A date field of a step form; ``label`` is its name in Chinese and English."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{label[0]}格式应为 YYYY-MM-DD", message_en=f"{label[1]}: use YYYY-MM-DD") from None
    if not 1900 <= day.year <= 2200:
        raise Invalid(f"{label[0]}不在有效范围内", message_en=f"{label[1]}: out of range")
    return day


@router.post("/clues/{clue_id}/transition")
async def transition(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    action: Annotated[str, Form(max_length=24)],
    reason: Annotated[str, Form(max_length=5000)] = "",
    approver_id: Annotated[str, Form(max_length=36)] = "",
    decision_on: Annotated[str, Form(max_length=10)] = "",
    method: Annotated[str, Form(max_length=24)] = "",
    kind: Annotated[str, Form(max_length=24)] = "",
    target: Annotated[str, Form(max_length=100)] = "",
    organ: Annotated[str, Form(max_length=100)] = "",
    to_unit_id: Annotated[str, Form(max_length=36)] = "",
    document_number: Annotated[str, Form(max_length=64)] = "",
    expected_feedback_on: Annotated[str, Form(max_length=10)] = "",
    finding: Annotated[str, Form(max_length=16)] = "",
    summary: Annotated[str, Form(max_length=5000)] = "",
    feedback: Annotated[str, Form(max_length=5000)] = "",
    clearing_record: Annotated[str, Form(max_length=5000)] = "",
    false_report_note: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """One lifecycle step. Each step's form sends only its own fields; anything else is ignored."""
    fields = set(STEP_FIELDS.get(action, ()))
    given = {
        "approver_id": approver_id,
        "decision_on": decision_on,
        "method": method,
        "kind": kind,
        "target": target,
        "organ": organ,
        "to_unit_id": to_unit_id,
        "document_number": document_number,
        "expected_feedback_on": expected_feedback_on,
        "finding": finding,
        "summary": summary,
        "feedback": feedback,
        "clearing_record": clearing_record,
        "false_report_note": false_report_note,
    }
    own = {k: v.strip() for k, v in given.items() if k in fields and v.strip()}

    async def work() -> None:
        await lifecycle.apply_transition(
            session,
            clue_id=clue_id,
            request=lifecycle.TransitionRequest(
                action=action,
                reason=reason,
                approver_id=own.get("approver_id"),
                decision_on=_date(
                    own.get("decision_on", ""), ("集体研究日期", "date of the collective decision")
                ),
                method=own.get("method"),
                kind=own.get("kind"),
                target=own.get("organ") if action == "send_on" else own.get("target"),
                to_unit_id=own.get("to_unit_id"),
                document_number=own.get("document_number"),
                expected_feedback_on=_date(
                    own.get("expected_feedback_on", ""), ("反馈期限", "feedback due date")
                ),
                finding=own.get("finding"),
                summary=own.get("summary"),
                feedback=own.get("feedback"),
                clearing_record=own.get("clearing_record"),
                false_report_note=own.get("false_report_note"),
            ),
            principal=principal,
            runtime=runtime,
        )

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id,
        work,
        form=f"step-{action}",
        values={**own, "reason": reason},
    )


@router.post("/clues/{clue_id}/messages")
async def send_message(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    text: Annotated[str, Form(max_length=messages_service.MAX_MESSAGE_CHARS + 100)] = "",
) -> Response:
    """Answer the reporter (sealed for staff and for the reporter, who reads it on the status page)."""

    async def work() -> None:
        await messages_service.staff_send(
            session, clue_id=clue_id, principal=principal, keys=runtime.keys, text=text
        )

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id,
        work,
        form="message",
        values={"text": text},
        anchor="#messages",
    )


@router.post("/clues/{clue_id}/notes")
async def add_note(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    text: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """A working note (sealed, shown in the history): the handler or a supervisor."""

    async def work() -> None:
        require(principal.roles, Action.handle_clue)
        await lifecycle.add_note(session, clue_id=clue_id, text=text, principal=principal, runtime=runtime)

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id,
        work,
        form="note",
        values={"note": text},
        anchor="#history",
    )


@router.post("/clues/{clue_id}/progress/{request_id}")
async def report_progress(
    clue_id: str,
    request_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    report: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Answer a supervisor's progress request (督办) on this clue."""

    async def work() -> None:
        require(principal.roles, Action.report_progress)
        await supervision.report_progress(
            session, request_id=request_id[:36], report=report, principal=principal, runtime=runtime
        )

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id,
        work,
        form=f"progress-{request_id[:36]}",
        anchor="#progress",
    )


@router.post("/clues/{clue_id}/transfer-request")
async def request_transfer(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    to_unit_id: Annotated[str, Form(max_length=36)] = "",
    reason: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """The handler asks a supervisor to move the clue to another unit."""

    async def work() -> None:
        require(principal.roles, Action.request_transfer)
        if not to_unit_id:
            raise Invalid("请选择移交的单位", message_en="choose the unit")
        await transfer_requests.request_transfer(
            session,
            clue_id=clue_id,
            to_unit_id=to_unit_id,
            reason=reason,
            principal=principal,
            runtime=runtime,
        )

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id,
        work,
        form="transfer-request",
        values={"to_unit_id": to_unit_id, "transfer_reason": reason},
    )


@router.get("/files/{attachment_id}")
async def file_download(
    attachment_id: str,
    principal: CurrentStaffSession,
    session: SessionDep,
    runtime: RuntimeDep,
    view: str = "",
) -> Response:
    """A clue's file, the cleaned copy only, decrypted as it streams; audited before the first byte.
    Images can be shown in the browser (``?view=1``); everything else is a download."""
    download = await attachments_service.open_download(
        session, attachment_id=attachment_id[:36], principal=principal, keys=runtime.keys, store=runtime.blobs
    )
    inline = bool(view) and download.media_type in VIEWABLE
    disposition = "inline" if inline else "attachment"
    return StreamingResponse(
        download.chunks,
        media_type=download.media_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="{download.filename}"',
            "Content-Length": str(download.size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
            "Referrer-Policy": "no-referrer",
        },
    )
