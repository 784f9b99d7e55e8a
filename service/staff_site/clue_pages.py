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
from service.auth import sessions as session_service
from service.auth.models import Staff, StaffRole, Unit
from service.auth.permissions import Action, Role, is_allowed, require
from service.auth.service import Principal
from service.classification import classifier
from service.classification import service as classification_service
from service.handoff import service as handoff_service
from service.http.deps import RuntimeDep, SessionDep
from service.http.multipart import BodyTooLarge, FieldTooLarge, MalformedForm, StreamingForm
from service.intake import assisted as hotline_service
from service.messages import contact
from service.messages import service as messages_service
from service.messages.models import FROM_REPORTER
from service.platform.errors import DomainError, Forbidden, Invalid, TooLarge
from service.platform.runtime import Runtime
from service.platform.timeutil import LOCAL, utcnow
from service.redaction import files as redaction_files
from service.redaction import service as redaction_service
from service.registry import desk, lifecycle, routing, supervision, transfer_requests
from service.registry import service as registry_service
from service.registry.ledger import CHANNEL_NAMES, METHOD_NAMES, SOURCE_NAMES
from service.registry.models import Clue, ClueState
from service.staff_site.pages import DEFAULT_LANG, lang_of, render, translate
from service.staff_site.session import CSRF_FIELD, CsrfProtected, CurrentStaffSession

router = APIRouter(include_in_schema=False)  # included by registry_pages under /staff/registry
# A file for the reporter is parsed as a stream: exempt from the generic body limit.
UPLOAD_PATHS = ("/staff/registry/clues/{clue_id}/messages/file",)

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


async def active_staff(session: Any) -> list[tuple[str, str]]:
    """Every active account: (id, name), by name (whom a supervisor may recuse)."""
    rows = await session.execute(
        select(Staff.id, Staff.name).where(Staff.disabled.is_(False)).order_by(Staff.name)
    )
    return [(r.id, r.name) for r in rows.all()]


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
    values: dict[str, Any] | None = None  # str values; the region form's rows are a list of tuples


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
        await hotline_service.list_additions(
            session, clue_id=clue.id, runtime=runtime, actor=principal.actor, unlocked=principal.unlocked
        )
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
    recusals = await registry_service.list_recusals(
        session, clue_id=clue.id, principal=principal, keys=runtime.keys
    )
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
    redaction = (
        await redaction_panel(
            session,
            principal,
            runtime,
            view.text,
            view.accused,
            messages,
            additions,
            files,
            clue_id=clue.id,
            lang=lang_of(request),
        )
        if is_allowed(roles, Action.redact)
        else None
    )
    follow_ups = (
        await contact.follow_ups(session, clue_id=clue.id, principal=principal, runtime=runtime)
        if is_allowed(roles, Action.record_follow_up)
        else None
    )
    may_export = is_allowed(roles, Action.export_dossier) and any(
        t.kind in handoff_service.HANDOFF_KINDS for t in transfers
    )
    objections = (
        await contact.objections(session, clue_id=clue.id, principal=principal, runtime=runtime)
        if is_allowed(roles, Action.record_objection)
        else []
    )
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
            "recusals": recusals,
            "recusable": await active_staff(session) if is_allowed(roles, Action.assign_clue) else [],
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
            "region_rows": REGION_ROWS,
            "today": now.astimezone(LOCAL).date().isoformat(),
            "concluded": clue.status in contact.CONCLUDED,
            "follow_ups": follow_ups,
            "follow_up_channels": contact.FOLLOW_UP_CHANNELS,
            "follow_up_outcomes": contact.FOLLOW_UP_OUTCOMES,
            "objections": objections,
            "may_record_objection": is_allowed(roles, Action.record_objection)
            and clue.real_name
            and clue.status in contact.CONCLUDED
            and not any(o.status in contact.OPEN_OBJECTION for o in objections),
            "may_decide_objection": is_allowed(roles, Action.decide_objection),
            "objection_channels": contact.OBJECTION_CHANNELS,
            "objection_statuses": contact.OBJECTION_STATUSES,
            "objection_results": contact.OBJECTION_RESULTS,
            "may_export_dossier": may_export,
            "dossiers": await handoff_service.list_dossiers(session, clue_id=clue.id, principal=principal)
            if may_export
            else [],
            "investigators": [(i, n) for i, n, _ in await people_with(session, Role.investigator)],
            "redaction": redaction,
            "may_request_unmask": is_allowed(roles, Action.request_unmask),
        },
        principal=principal,
        status_code=note.status_code,
    )


# The redaction panel's labels, translated through the staff catalog (make_catalogs collects them).
REDACTION_LABELS = {
    "report": "反映内容",
    "message": "第 %(n)s 条消息",
    "addition": "来电补充 %(n)s",
    "accused_name": "被反映人姓名",
    "accused_unit": "被反映人单位",
    "accused_position": "被反映人职务",
    "accused_rank": "被反映人职级",
    "accused_region": "被反映人地区",
    "attachment": "附件 %(n)s",
    "file": "%(label)s（%(kind)s，第 %(version)s 版）",
}


@dataclass(frozen=True)
class RedactionPanel:
    """The clue page's redaction section: what goes onward, the targets with their latest version numbers
    (a form names the version its offsets refer to), the versions with who and why, unmask requests."""

    report: str  # the report as it goes onward
    texts: list[tuple[str, str, str]]  # (form value "kind|id|field|version", label, text as it goes onward)
    files: list[tuple[str, str]]  # (form value "attachment id|version", label): images and PDF files
    versions: list[redaction_service.VersionView]
    unmask_requests: list[redaction_service.UnmaskView]
    labels: dict[str, str]  # target id (an accused field: "clue id|field") -> label


async def redaction_panel(
    session: Any,
    principal: Principal,
    runtime: Runtime,
    report_text: str,
    accused: dict[str, Any],
    messages: list[messages_service.MessageView],
    additions: list[Any],
    files: list[attachments_service.AttachmentListing],
    *,
    clue_id: str,
    lang: str = DEFAULT_LANG,
) -> RedactionPanel:
    versions = await redaction_service.list_versions(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    latest: dict[tuple[str, str, str], redaction_service.VersionView] = {
        (v.target, v.target_id, v.field): v for v in versions
    }

    def current(kind: str, target_id: str, field: str, text: str) -> tuple[int, str]:
        found = latest.get((kind, target_id, field))
        return (found.version, found.text or "") if found else (0, text)

    report_version, report = current("report", clue_id, "", report_text)

    def label(which: str, **values: object) -> str:
        return translate(lang, REDACTION_LABELS[which]) % values

    labels = {clue_id: label("report")}
    texts = []
    texts.append((f"report|{clue_id}||{report_version}", labels[clue_id], report))
    for field in redaction_service.ACCUSED_FIELDS:
        if isinstance(accused.get(field), str) and accused[field]:
            labels[f"{clue_id}|{field}"] = label(f"accused_{field}")
            version, text = current("accused", clue_id, field, accused[field])
            texts.append((f"accused|{clue_id}|{field}|{version}", labels[f"{clue_id}|{field}"], text))
    for number, m in enumerate(messages, start=1):
        labels[m.id] = label("message", n=number)
        version, text = current("message", m.id, "", m.text)
        if text:
            texts.append((f"message|{m.id}||{version}", labels[m.id], text))
    for number, a in enumerate(additions, start=1):
        labels[a.id] = label("addition", n=number)
        for field in ("text", "correction"):
            if isinstance(a.content.get(field), str) and a.content[field]:
                version, text = current("addition", a.id, field, a.content[field])
                texts.append((f"addition|{a.id}|{field}|{version}", labels[a.id], text))
    covered = []
    for number, f in enumerate(files, start=1):
        labels[f.id] = label("attachment", n=number)
        if not f.sealed_reason and (
            f.kind in redaction_files.IMAGE_KINDS or f.kind == redaction_files.PDF_KIND
        ):
            version = latest[("attachment", f.id, "")].version if ("attachment", f.id, "") in latest else 0
            covered.append(
                (f"{f.id}|{version}", label("file", label=labels[f.id], kind=f.kind, version=version))
            )
    requests = await redaction_service.list_unmask_requests(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    return RedactionPanel(report, texts, covered, versions, requests, labels)


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
    values: dict[str, Any] | None = None,
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
                runtime=runtime,
                confirm_recusal=confirm_recusal,
            )

    return await _after(request, principal, session, runtime, clue_id, work, form="assign")


@router.post("/clues/{clue_id}/recusals")
async def recuse(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    staff_id: Annotated[str, Form(max_length=36)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Recuse a person from the clue, with a reason: the service the API's ``/recusals`` calls."""

    async def work() -> None:
        require(principal.roles, Action.assign_clue)
        await registry_service.recuse_staff(
            session, clue_id=clue_id, staff_id=staff_id, reason=reason, principal=principal, keys=runtime.keys
        )

    values = {"staff_id": staff_id, "reason": reason}
    return await _after(
        request, principal, session, runtime, clue_id, work, form="recusal", values=values, anchor="#recusals"
    )


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
        await handoff_service.apply_transition(
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


@router.post("/clues/{clue_id}/messages/file")
async def send_file(
    clue_id: str, request: Request, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """A file for the reporter, with an optional message: session login, then the CSRF field read from the
    stream (not ``CsrfProtected``, which would make Starlette parse and spool the whole body)."""

    async def work() -> None:
        await _stream_file_to_reporter(request, principal, session, runtime, clue_id[:36])

    return await _after(
        request, principal, session, runtime, clue_id[:36], work, form="message-file", anchor="#messages"
    )


async def _stream_file_to_reporter(
    request: Request, principal: Principal, session: Any, runtime: Runtime, clue_id: str
) -> None:
    require(principal.roles, Action.exchange_messages)  # before reading any of the body
    text_limit = messages_service.MAX_MESSAGE_CHARS * 4 + 100  # bytes of UTF-8
    cap = runtime.settings.letter_page_max_bytes
    checked, text, sent = False, "", False
    try:
        form = StreamingForm(
            request.stream(), request.headers.get("content-type", ""), max_body=cap + text_limit + 64 * 1024
        )
        async for part in form.parts():
            if not part.is_file:
                if part.name == CSRF_FIELD and not checked:
                    presented = await part.read_text(1024)
                    if not session_service.csrf_matches(
                        runtime, request.state.staff_session_token, presented
                    ):
                        raise Forbidden(
                            "表单已过期或来源不明，请刷新页面后重试", message_en="invalid CSRF token"
                        )
                    checked = True
                elif part.name == "text" and checked:
                    text = await part.read_text(text_limit)
                continue
            if not checked:
                raise Forbidden("表单已过期或来源不明，请刷新页面后重试", message_en="CSRF token missing")
            if not part.filename:
                continue
            if sent:
                raise Invalid("一次只能发送一个文件", message_en="one file at a time")
            await messages_service.staff_send_file(
                session,
                clue_id=clue_id,
                principal=principal,
                runtime=runtime,
                store=runtime.blobs,
                chunks=part.chunks(),
                text=text,
            )
            sent = True
    except BodyTooLarge:
        raise TooLarge("文件太大", message_en="the upload is larger than allowed") from None
    except (MalformedForm, FieldTooLarge):
        raise Invalid("无法读取上传的表单", message_en="the form could not be read") from None
    if not checked:
        raise Forbidden("表单已过期或来源不明，请刷新页面后重试", message_en="CSRF token missing")
    if not sent:
        raise Invalid("请选择要发给举报人的文件", message_en="choose a file to send")


@router.post("/clues/{clue_id}/follow-ups")
async def record_follow_up(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    visited_on: Annotated[str, Form(max_length=20)] = "",
    channel: Annotated[str, Form(max_length=16)] = "",
    outcome: Annotated[str, Form(max_length=16)] = "",
    visitor_id: Annotated[str, Form(max_length=36)] = "",
    note: Annotated[str, Form(max_length=contact.MAX_NOTE_CHARS + 100)] = "",
) -> Response:
    """Record a 回访 (follow-up call or visit) of a concluded clue."""
    values = {"visited_on": visited_on, "channel": channel, "outcome": outcome, "visitor_id": visitor_id}

    async def work() -> None:
        await contact.record_follow_up(
            session,
            clue_id=clue_id[:36],
            principal=principal,
            runtime=runtime,
            visited_on=_date(visited_on, "回访日期"),
            channel=channel,
            outcome=outcome,
            note=note,
            visitor_id=visitor_id or None,
        )

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id[:36],
        work,
        form="follow-up",
        values={**values, "note": note},
        anchor="#follow-ups",
    )


@router.post("/clues/{clue_id}/objections")
async def record_objection(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    received_on: Annotated[str, Form(max_length=20)] = "",
    channel: Annotated[str, Form(max_length=16)] = "",
    text: Annotated[str, Form(max_length=contact.MAX_NOTE_CHARS + 100)] = "",
) -> Response:
    """Record a real-name reporter's objection made by phone, letter or in person."""

    async def work() -> None:
        await contact.record_objection(
            session,
            clue_id=clue_id[:36],
            principal=principal,
            runtime=runtime,
            channel=channel,
            received_on=_date(received_on, "收到异议日期"),
            text=text,
        )

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id[:36],
        work,
        form="objection",
        values={"received_on": received_on, "channel": channel, "objection_text": text},
        anchor="#objections",
    )


@router.post("/clues/{clue_id}/objections/{objection_id}/decision")
async def decide_objection(
    clue_id: str,
    objection_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    decision: Annotated[str, Form(max_length=16)] = "",
    result: Annotated[str, Form(max_length=16)] = "",
    text: Annotated[str, Form(max_length=contact.MAX_NOTE_CHARS + 100)] = "",
) -> Response:
    """Accept an objection for review, reject it with a reason, or record the review's result."""

    async def work() -> None:
        await contact.decide_objection(
            session,
            objection_id=objection_id[:36],
            principal=principal,
            runtime=runtime,
            decision=decision,
            text=text,
            result=result or None,
        )

    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id[:36],
        work,
        form=f"objection-{objection_id[:36]}",
        values={"decision": decision, "result": result, "answer": text},
        anchor="#objections",
    )


@router.post("/clues/{clue_id}/dossier")
async def dossier(
    clue_id: str, request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Produce the handed-off clue's signed dossier and download it (audited with its hash)."""
    try:
        exported = await handoff_service.export_dossier(
            session, clue_id=clue_id[:36], principal=principal, runtime=runtime
        )
    except DomainError as exc:
        await session.rollback()
        note = PageMessage((exc.message, exc.message_en), "error", exc.status_code, "dossier")
        return await clue_page_response(request, principal, session, runtime, clue_id[:36], note)
    return _zip(exported)


@router.get("/dossiers/{digest}")
async def dossier_download(
    digest: str, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """A dossier as it was produced (with the transfer, or by the button above); audited."""
    kept = await handoff_service.kept_dossier(
        session, digest=digest[:64], principal=principal, runtime=runtime
    )
    return _zip(kept)


def _zip(dossier: handoff_service.ExportedDossier) -> Response:
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


def _redaction_target(value: str) -> tuple[str, str, str, int]:
    """A text form's target: "kind|id|field|version" as the page wrote it."""
    parts = (value or "").split("|")
    if len(parts) != 4 or not parts[3].isdigit():
        raise Invalid("请选择要处理的文字", message_en="choose the text")
    return parts[0], parts[1], parts[2], int(parts[3])


def _offsets(text: str) -> list[list[int]]:
    """Spans typed as "12-18, 30-35" (start and end character positions, end not included)."""
    spans = []
    for piece in text.replace("，", ",").replace("\n", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        start, dash, end = piece.replace("–", "-").partition("-")
        if not dash or not start.strip().isdigit() or not end.strip().isdigit():
            raise Invalid(
                "位置的写法应为「起-止」，如 12-18", message_en='write positions as "start-end", e.g. 12-18'
            )
        spans.append([int(start), int(end)])
    return spans


def _number(value: str, name: tuple[str, str]) -> float:
    try:
        return float(value)
    except ValueError:
        raise Invalid(f"{name[0]}应为数字", message_en=f"{name[1]} must be a number") from None


@router.post("/clues/{clue_id}/redactions/text")
async def redact_text(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    target: Annotated[str, Form(max_length=120)] = "",
    quotes: Annotated[str, Form(max_length=20_000)] = "",
    spans: Annotated[str, Form(max_length=2000)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Cover passages (quoted, one a line) or positions of a text as its next version."""

    async def work() -> None:
        require(principal.roles, Action.redact)
        kind, target_id, field, version = _redaction_target(target)
        await redaction_service.redact_text(
            session,
            clue_id=clue_id,
            target=kind,
            target_id=target_id,
            field=field,
            base_version=version,
            spans=_offsets(spans),
            quotes=[q for q in quotes.splitlines() if q.strip()],
            reason=reason,
            principal=principal,
            keys=runtime.keys,
        )

    values = {"target": target, "quotes": quotes, "spans": spans, "reason": reason}
    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id,
        work,
        form="redact-text",
        values=values,
        anchor="#redaction",
    )


REGION_FIELDS = ("page", "x", "y", "width", "height")
REGION_ROWS = 5  # rows of region fields the form shows (blank rows are ignored; more: the next version)


def _regions(rows: list[tuple[str, ...]]) -> list[redaction_files.Region]:
    """The form's rows of region fields (page, x, y, width, height), blank rows left out: one version
    covers them all."""
    regions = []
    for index, row in enumerate(rows, start=1):
        page, x, y, width, height = (value.strip() for value in row)
        if not (x or y or width or height):
            continue
        if not (x and y and width and height):
            raise Invalid(
                f"第 {index} 行区域未填写完整（横坐标、纵坐标、宽度、高度）",
                message_en=f"region row {index}: give x, y, width and height",
            )
        regions.append(
            redaction_files.Region(
                page=int(_number(page or "1", ("页码", "page"))),
                x=_number(x, ("横坐标", "x")),
                y=_number(y, ("纵坐标", "y")),
                width=_number(width, ("宽度", "width")),
                height=_number(height, ("高度", "height")),
            )
        )
    if not regions:
        raise Invalid("请至少标出一个区域", message_en="mark at least one region")
    return regions


@router.post("/clues/{clue_id}/redactions/file")
async def redact_file(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[str, Form(max_length=80)] = "",
    page: Annotated[list[Annotated[str, Form(max_length=12)]], Form()] = [],  # noqa: B006 - FastAPI default
    x: Annotated[list[Annotated[str, Form(max_length=12)]], Form()] = [],  # noqa: B006
    y: Annotated[list[Annotated[str, Form(max_length=12)]], Form()] = [],  # noqa: B006
    width: Annotated[list[Annotated[str, Form(max_length=12)]], Form()] = [],  # noqa: B006
    height: Annotated[list[Annotated[str, Form(max_length=12)]], Form()] = [],  # noqa: B006
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Cover several rectangles of an image or PDF pages as the file's next version: the form repeats the
    region fields (row i of each field is region i), so no JavaScript is needed."""
    count = max(len(x), len(y), len(width), len(height))
    if count > redaction_files.MAX_REGIONS:
        count = redaction_files.MAX_REGIONS + 1  # refused below with the limit's message

    def column(values: list[str], default: str = "") -> list[str]:
        return [values[i] if i < len(values) else default for i in range(count)]

    rows = list(zip(column(page, "1"), column(x), column(y), column(width), column(height), strict=True))

    async def work() -> None:
        require(principal.roles, Action.redact)
        attachment_id, _, version = file.partition("|")
        if not version.isdigit():
            raise Invalid("请选择要处理的附件", message_en="choose the file")
        await redaction_service.redact_file(
            session,
            attachment_id=attachment_id,
            base_version=int(version),
            regions=_regions(rows),
            reason=reason,
            principal=principal,
            keys=runtime.keys,
            store=runtime.blobs,
        )

    values = {"file": file, "regions": rows, "reason": reason}
    return await _after(
        request,
        principal,
        session,
        runtime,
        clue_id,
        work,
        form="redact-file",
        values=values,
        anchor="#redaction",
    )


@router.post("/clues/{clue_id}/unmask-requests")
async def request_unmask(
    clue_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    target: Annotated[str, Form(max_length=120)] = "",
    start: Annotated[str, Form(max_length=12)] = "",
    end: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Ask custodians to show one automatically masked span (recorded, audited; nothing shown here)."""

    async def work() -> None:
        require(principal.roles, Action.request_unmask)
        kind, target_id, field, version = _redaction_target(target)
        await redaction_service.request_unmask(
            session,
            clue_id=clue_id,
            target=kind,
            target_id=target_id,
            field=field,
            base_version=version,
            start=int(_number(start, ("起始位置", "start"))),
            end=int(_number(end, ("结束位置", "end"))),
            reason=reason,
            principal=principal,
            keys=runtime.keys,
        )

    values = {"target": target, "start": start, "end": end, "reason": reason}
    return await _after(
        request, principal, session, runtime, clue_id, work, form="unmask", values=values, anchor="#redaction"
    )


@router.get("/redactions/{redaction_id}/file")
async def redacted_file(
    redaction_id: str, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """One redacted version of a file, as a download (audited)."""
    download = await redaction_service.open_version_file(
        session, redaction_id=redaction_id[:36], principal=principal, keys=runtime.keys, store=runtime.blobs
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
            "Referrer-Policy": "no-referrer",
        },
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
