"""Staff pages for typing clues in: hotline calls (and additions), letters, visits, staff sources.

Built for use while on the phone: one column, first field focused, everything reachable by Tab, Chinese
(or English, by the staff site's switch), no JavaScript. Every POST carries the session's CSRF token
(``CsrfProtected``); the service calls are the same as the API's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments.models import Attachment
from service.auth import sessions as session_service
from service.auth.permissions import Action, is_allowed
from service.auth.service import Principal
from service.classification import classifier
from service.http.deps import RuntimeDep, SessionDep
from service.http.multipart import BodyTooLarge, FieldTooLarge, MalformedForm, Part, StreamingForm
from service.intake import assisted as hotline_service
from service.intake import assisted_schemas as schemas
from service.intake import assisted_uploads as uploads
from service.intake.receipts import GROUP
from service.platform.blobs import BlobStore
from service.platform.errors import DomainError
from service.platform.runtime import Runtime
from service.platform.timeutil import LOCAL
from service.staff_site.pages import render
from service.staff_site.session import CSRF_FIELD, CsrfProtected, CurrentStaffSession

# The multipart upload forms, parsed as streams: exempt from the generic body limit.
UPLOAD_PATHS = ("/staff/hotline/calls/{clue_id}/recording", "/staff/letters/{clue_id}/pages")

router = APIRouter(prefix="/staff", include_in_schema=False)

ACCUSED_FIELDS = ("name", "unit", "position", "rank", "region")
Pair = tuple[str, str]  # (Chinese, English): the page shows one, by the language switch
# What pydantic found, in words (its own text is English only); anything else is "please check".
PROBLEMS: dict[str, Pair] = {
    "missing": ("必填", "required"),
    "string_too_short": ("必填", "required"),
    "string_too_long": ("太长", "too long"),
    "date_parsing": ("日期格式应为 YYYY-MM-DD", "use a date as YYYY-MM-DD"),
    "date_from_datetime_parsing": ("日期格式应为 YYYY-MM-DD", "use a date as YYYY-MM-DD"),
    "datetime_parsing": ("日期或时间无效", "not a valid date and time"),
    "datetime_from_date_parsing": ("日期或时间无效", "not a valid date and time"),
    "int_parsing": ("应为整数", "use a whole number"),
    "int_from_float": ("应为整数", "use a whole number"),
    "greater_than_equal": ("数值太小", "too small"),
    "greater_than": ("数值太小", "too small"),
    "less_than_equal": ("数值太大", "too large"),
    "less_than": ("数值太大", "too large"),
}
# The models' own checks (service.intake.assisted_schemas), by their English message.
CHECKS: dict[str, str] = {
    "contains control characters": "含有控制字符",
    "a phone number has digits, spaces, + - ( ) only": "电话号码只能包含数字、空格和 + - ( )",
    "a real-name call needs caller_name": "实名来电须填写来电人姓名",
    "callback_number given but callback_allowed is false": "填写了回电号码，但未勾选同意回电",
    "received_date is before postmark_date": "收到日期早于邮戳日期",
    "a real-name letter needs writer.name": "实名来信须填写写信人姓名",
    "a real-name visit needs visitor.name": "实名来访须填写来访人姓名",
    "deadline is before received_date": "办结期限早于收到日期",
}


def _forbidden(request: Request, principal: Principal) -> Response:
    message = ("您的角色无权使用此页面。", "Your role may not use this page.")
    return render(request, "message.html", {"message": message}, principal=principal, status_code=403)


def _text(form: dict[str, Any], name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _flag(form: dict[str, Any], name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "yes")


def _local_moment(day: str | None, clock: str | None) -> datetime | str | None:
    if not day:
        return None
    try:
        moment = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock or "00:00"))
    except ValueError:
        return day  # left for validation to refuse, naming the field
    return moment.replace(tzinfo=LOCAL)


def _accused(form: dict[str, Any]) -> dict[str, Any]:
    return {f: _text(form, f"accused_{f}") for f in ACCUSED_FIELDS}


def _incident(form: dict[str, Any]) -> dict[str, Any]:
    return {"time": _text(form, "incident_time"), "place": _text(form, "incident_place")}


def _problem(err: Any) -> Pair:
    if err["type"] == "value_error":
        said = str(err.get("ctx", {}).get("error", "")) or err["msg"].removeprefix("Value error, ")
        return (
            (f"请检查此项：{CHECKS[said]}", said) if said in CHECKS else ("请检查此项", "please check this")
        )
    zh, en = PROBLEMS.get(err["type"], ("请检查此项", "please check this"))
    return f"请检查此项：{zh}", en


def _errors(exc: ValidationError) -> dict[str, Pair]:
    """Field -> (Chinese, English) message, without echoing values. Model-level problems go under
    ``_form``."""
    errors: dict[str, Pair] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        key = "_".join(loc) if loc else "_form"
        errors.setdefault(key, _problem(err))
    return errors


def _page_context(form: dict[str, Any], errors: dict[str, Pair] | None = None) -> dict[str, Any]:
    taxonomy = classifier.current_taxonomy()
    return {
        "form": form,
        "errors": errors or {},
        "categories": [(c.id, c.name) for c in taxonomy.categories],
        "sources": SOURCE_LABELS,
    }


async def _form(request: Request) -> dict[str, Any]:
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def _groups(code: str) -> list[str]:
    return [code[i : i + GROUP] for i in range(0, len(code), GROUP)]


async def _submit(
    request: Request,
    principal: Principal,
    *,
    template: str,
    form: dict[str, Any],
    build: Any,
    register: Any,
    session: AsyncSession,
) -> Response:
    """Validate, register, and show the result; on any problem re-render the form with field errors
    (nothing is stored then: the request's transaction rolls back on DomainError)."""
    try:
        model: BaseModel = build()
    except ValidationError as exc:
        context = _page_context(form, _errors(exc))
        return render(request, template, context, principal=principal, status_code=422)
    try:
        done = await register(model)
    except DomainError as exc:
        await session.rollback()
        context = _page_context(form, {"_form": (exc.message, exc.message_en)})
        return render(request, template, context, principal=principal, status_code=exc.status_code)
    return done


# --- Hotline ----------------------------------------------------------------------------------------


@router.get("/hotline/calls/new")
async def call_form(request: Request, principal: CurrentStaffSession) -> Response:
    if not is_allowed(principal.roles, Action.register_call):
        return _forbidden(request, principal)
    now = datetime.now(LOCAL)
    form = {"call_date": now.date().isoformat(), "call_time": now.strftime("%H:%M"), "anonymous": "on"}
    return render(request, "call.html", _page_context(form), principal=principal)


@router.post("/hotline/calls")
async def call_submit(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    if not is_allowed(principal.roles, Action.register_call):
        return _forbidden(request, principal)
    form = await _form(request)

    def build() -> schemas.CallIn:
        minutes = _text(form, "duration_minutes")
        return schemas.CallIn.model_validate(
            {
                "call_started_at": _local_moment(_text(form, "call_date"), _text(form, "call_time")),
                "duration_seconds": (
                    int(float(minutes) * 60) if minutes and minutes.replace(".", "", 1).isdigit() else minutes
                ),
                "caller_number": _text(form, "caller_number"),
                "anonymous": not _flag(form, "real_name"),
                "caller_name": _text(form, "caller_name"),
                "callback_allowed": _flag(form, "callback_allowed"),
                "callback_how": _text(form, "callback_how"),
                "callback_number": _text(form, "callback_number"),
                "accused": _accused(form),
                "incident": _incident(form),
                "category_hint": _text(form, "category_hint"),
                "summary": _text(form, "summary") or "",
                "caller_words": _text(form, "caller_words"),
            }
        )

    async def register(call: schemas.CallIn) -> Response:
        done = await hotline_service.register_call(runtime=runtime, call=call, actor=principal.actor)
        context = {
            "registry_number": done.registry_number,
            "groups": _groups(done.receipt),
            "clue_id": done.clue_id,
        }
        return render(request, "call_done.html", context, principal=principal, status_code=201)

    return await _submit(
        request, principal, template="call.html", form=form, build=build, register=register, session=session
    )


@router.get("/hotline/add")
async def addition_form(request: Request, principal: CurrentStaffSession) -> Response:
    if not is_allowed(principal.roles, Action.add_to_call_clue):
        return _forbidden(request, principal)
    return render(request, "addition.html", _page_context({}), principal=principal)


@router.post("/hotline/add")
async def addition_submit(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    if not is_allowed(principal.roles, Action.add_to_call_clue):
        return _forbidden(request, principal)
    form = await _form(request)

    def build() -> schemas.AdditionIn:
        return schemas.AdditionIn.model_validate(
            {"receipt": _text(form, "receipt") or "", "text": _text(form, "text") or ""}
        )

    async def register(addition: schemas.AdditionIn) -> Response:
        await hotline_service.add_to_clue_by_code(
            session, runtime=runtime, addition=addition, actor=principal.actor
        )
        message = (
            "补充内容已记录。查询码已标记为“已口头告知”，来电人下次上网查询时需更换新码。",
            "Added. The caller will be asked to replace the code at their next web visit.",
        )
        return render(
            request,
            "addition.html",
            {**_page_context({}), "message": message, "message_class": "ok"},
            principal=principal,
            status_code=201,
        )

    return await _submit(
        request,
        principal,
        template="addition.html",
        form=form,
        build=build,
        register=register,
        session=session,
    )


# --- Letters and visits ------------------------------------------------------------------------------


def _person(form: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {f: _text(form, f"{prefix}_{f}") for f in ("name", "phone", "address", "id_number", "email")}


@router.get("/letters/new")
async def letter_form(request: Request, principal: CurrentStaffSession) -> Response:
    if not is_allowed(principal.roles, Action.register_letter_visit):
        return _forbidden(request, principal)
    form = {"received_date": datetime.now(LOCAL).date().isoformat()}
    return render(request, "letter.html", _page_context(form), principal=principal)


@router.post("/letters")
async def letter_submit(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    if not is_allowed(principal.roles, Action.register_letter_visit):
        return _forbidden(request, principal)
    form = await _form(request)

    def build() -> schemas.LetterIn:
        return schemas.LetterIn.model_validate(
            {
                "postmark_date": _text(form, "postmark_date"),
                "received_date": _text(form, "received_date"),
                "page_count": _text(form, "page_count"),
                "anonymous": not _flag(form, "real_name"),
                "writer": _person(form, "writer"),
                "accused": _accused(form),
                "incident": _incident(form),
                "category_hint": _text(form, "category_hint"),
                "text": _text(form, "text") or "",
            }
        )

    async def register(letter: schemas.LetterIn) -> Response:
        done = await hotline_service.register_letter(runtime=runtime, letter=letter, actor=principal.actor)
        context = {
            "registry_number": done.registry_number,
            "groups": _groups(done.receipt),
            "kind": "letter",
            "clue_id": done.clue_id,
        }
        return render(request, "registered.html", context, principal=principal, status_code=201)

    return await _submit(
        request, principal, template="letter.html", form=form, build=build, register=register, session=session
    )


@router.get("/visits/new")
async def visit_form(request: Request, principal: CurrentStaffSession) -> Response:
    if not is_allowed(principal.roles, Action.register_letter_visit):
        return _forbidden(request, principal)
    form = {"visit_date": datetime.now(LOCAL).date().isoformat(), "received_by": principal.name}
    return render(request, "visit.html", _page_context(form), principal=principal)


@router.post("/visits")
async def visit_submit(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    if not is_allowed(principal.roles, Action.register_letter_visit):
        return _forbidden(request, principal)
    form = await _form(request)

    def build() -> schemas.VisitIn:
        return schemas.VisitIn.model_validate(
            {
                "visit_date": _text(form, "visit_date"),
                "received_by": _text(form, "received_by") or "",
                "anonymous": not _flag(form, "real_name"),
                "visitor": _person(form, "visitor"),
                "accused": _accused(form),
                "incident": _incident(form),
                "category_hint": _text(form, "category_hint"),
                "text": _text(form, "text") or "",
            }
        )

    async def register(visit: schemas.VisitIn) -> Response:
        done = await hotline_service.register_visit(runtime=runtime, visit=visit, actor=principal.actor)
        context = {"registry_number": done.registry_number, "groups": _groups(done.receipt), "kind": "visit"}
        return render(request, "registered.html", context, principal=principal, status_code=201)

    return await _submit(
        request, principal, template="visit.html", form=form, build=build, register=register, session=session
    )


# --- Staff-entered sources ---------------------------------------------------------------------------

SOURCE_LABELS = {
    "superior_assigned": "上级交办",
    "self_inspection": "本级自查",
    "voluntary_confession": "干警主动坦白",
}


@router.get("/sources/new")
async def source_form(
    request: Request, principal: CurrentStaffSession, source: str = "superior_assigned"
) -> Response:
    if not is_allowed(principal.roles, Action.register_staff_source):
        return _forbidden(request, principal)
    if source not in SOURCE_LABELS:
        source = "superior_assigned"
    context = {**_page_context({"source": source}), "sources": SOURCE_LABELS}
    return render(request, "source.html", context, principal=principal)


@router.post("/sources")
async def source_submit(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    if not is_allowed(principal.roles, Action.register_staff_source):
        return _forbidden(request, principal)
    form = await _form(request)
    source = form.get("source") if form.get("source") in SOURCE_LABELS else "superior_assigned"
    form["source"] = source

    def build() -> Any:
        common = {
            "source": source,
            "text": _text(form, "text") or "",
            "incident": _incident(form),
            "category_hint": _text(form, "category_hint"),
        }
        if source == "superior_assigned":
            return schemas.SuperiorAssignedIn.model_validate(
                {
                    **common,
                    "accused": _accused(form),
                    "assigning_body": _text(form, "assigning_body") or "",
                    "document_number": _text(form, "document_number") or "",
                    "received_date": _text(form, "received_date"),
                    "deadline": _text(form, "deadline"),
                }
            )
        if source == "self_inspection":
            return schemas.SelfInspectionIn.model_validate(
                {
                    **common,
                    "accused": _accused(form),
                    "inspection": _text(form, "inspection") or "",
                    "recorded_by": _text(form, "recorded_by") or "",
                    "found_date": _text(form, "found_date"),
                }
            )
        return schemas.VoluntaryConfessionIn.model_validate(
            {
                **common,
                "officer": {
                    "name": _text(form, "officer_name") or "",
                    "unit": _text(form, "officer_unit"),
                    "position": _text(form, "officer_position"),
                    "rank": _text(form, "officer_rank"),
                    "id_number": _text(form, "officer_id_number"),
                    "phone": _text(form, "officer_phone"),
                },
                "confession_date": _text(form, "confession_date"),
                "received_by": _text(form, "received_by") or "",
            }
        )

    async def register(entry: Any) -> Response:
        done = await hotline_service.register_staff_source(
            runtime=runtime, entry=entry, actor=principal.actor
        )
        context = {"registry_number": done.registry_number, "groups": None, "kind": source}
        return render(request, "registered.html", context, principal=principal, status_code=201)

    return await _submit(
        request, principal, template="source.html", form=form, build=build, register=register, session=session
    )


# --- Files for a clue just typed in: a call's recording, a letter's scanned pages ---------------------
#
# The body is parsed as a stream (``channels.web.multipart``: never ``request.form()``, which spools big
# files to plaintext temporary files) and each file part goes straight into ``hotline.uploads`` (sniff,
# strip, encrypt, store). The CSRF field must come before the first file; nothing is stored before it
# has been checked. Either every file of one form is kept or none is.

MAX_PAGES_PER_FORM = 20
FIELD_LIMIT = 1024  # the only text field is the CSRF token


@dataclass(frozen=True)
class _UploadKind:
    name: str  # "recording" or "pages"
    action: Action
    channel: str
    max_files: int


RECORDING = _UploadKind("recording", Action.register_call, "hotline", 1)
PAGES = _UploadKind("pages", Action.register_letter_visit, "letter", MAX_PAGES_PER_FORM)


def _upload_cap(kind: _UploadKind, runtime: Runtime) -> int:
    settings = runtime.settings
    return settings.hotline_recording_max_bytes if kind is RECORDING else settings.letter_page_max_bytes


def _upload_page(
    request: Request,
    principal: Principal,
    kind: _UploadKind,
    runtime: Runtime,
    *,
    stored: int = 0,
    error: Pair | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "kind": kind.name,
        "action": request.url.path,
        "max_mb": max(1, _upload_cap(kind, runtime) // (1024 * 1024)),
        "max_files": kind.max_files,
        "stored": stored,
        "errors": {"file": error} if error else {},
    }
    return render(request, "upload.html", context, principal=principal, status_code=status_code)


class _UploadRefused(Exception):
    def __init__(self, status_code: int, zh: str, en: str) -> None:
        self.status_code, self.text = status_code, (zh, en)


async def _receive_files(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    runtime: Runtime,
    *,
    kind: _UploadKind,
    clue_id: str,
) -> Response:
    if not is_allowed(principal.roles, kind.action):
        return _forbidden(request, principal)
    cap = _upload_cap(kind, runtime)
    store = runtime.blobs
    kept: list[str] = []  # blob ids stored by this request, deleted again if the form is refused
    csrf_checked = False
    try:
        try:
            form = StreamingForm(
                request.stream(),
                request.headers.get("content-type", ""),
                max_body=kind.max_files * (cap + 64 * 1024) + 64 * 1024,
            )
            async for part in form.parts():
                if not part.is_file:
                    if part.name == CSRF_FIELD and not csrf_checked:
                        presented = await part.read_text(FIELD_LIMIT)
                        if not session_service.csrf_matches(
                            runtime, request.state.staff_session_token, presented
                        ):
                            raise _UploadRefused(
                                403, "表单已过期或来源不明，请刷新页面后重试", "invalid CSRF token"
                            )
                        csrf_checked = True
                    continue
                if not csrf_checked:
                    raise _UploadRefused(403, "表单已过期或来源不明，请刷新页面后重试", "CSRF token missing")
                if not part.filename:
                    continue  # the file input was left empty
                if len(kept) >= kind.max_files:
                    raise _UploadRefused(
                        422,
                        f"一次最多上传 {kind.max_files} 个文件",
                        f"at most {kind.max_files} files at once",
                    )
                kept.append(await _store_one(session, runtime, store, kind, clue_id, part, principal.actor))
        except BodyTooLarge:
            raise _UploadRefused(413, "文件太大", "the upload is larger than allowed") from None
        except (MalformedForm, FieldTooLarge):
            raise _UploadRefused(400, "无法读取上传的表单", "the form could not be read") from None
        except DomainError as exc:
            raise _UploadRefused(exc.status_code, exc.message, exc.message_en) from None
        if not csrf_checked:
            raise _UploadRefused(403, "表单已过期或来源不明，请刷新页面后重试", "CSRF token missing")
        if not kept:
            raise _UploadRefused(422, "请选择要上传的文件", "choose a file to upload")
    except _UploadRefused as refused:
        await session.rollback()
        for blob_id in kept:
            await store.delete(blob_id)
        return _upload_page(
            request, principal, kind, runtime, error=refused.text, status_code=refused.status_code
        )
    except BaseException:
        await session.rollback()
        for blob_id in kept:
            await store.delete(blob_id)
        raise
    return _upload_page(request, principal, kind, runtime, stored=len(kept), status_code=201)


async def _store_one(
    session: AsyncSession,
    runtime: Runtime,
    store: BlobStore,
    kind: _UploadKind,
    clue_id: str,
    part: Part,
    actor: str,
) -> str:
    """Store one file part; returns its blob id (for clean-up if a later part is refused)."""
    if kind is RECORDING:
        _, blob_id = await uploads.attach_recording(
            session, runtime=runtime, store=store, clue_id=clue_id, chunks=part.chunks(), actor=actor
        )
        return blob_id
    attachment_id = await uploads.attach_letter_page(
        session, runtime=runtime, store=store, clue_id=clue_id, chunks=part.chunks(), actor=actor
    )
    attachment = await session.get(Attachment, attachment_id)
    assert attachment is not None
    return attachment.blob_id


async def _upload_form(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    runtime: Runtime,
    kind: _UploadKind,
    clue_id: str,
) -> Response:
    if not is_allowed(principal.roles, kind.action):
        return _forbidden(request, principal)
    await uploads.own_clue(session, clue_id=clue_id, channel=kind.channel, actor=principal.actor)
    return _upload_page(request, principal, kind, runtime)


@router.get("/hotline/calls/{clue_id}/recording")
async def recording_form(
    request: Request, clue_id: str, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    return await _upload_form(request, principal, session, runtime, RECORDING, clue_id)


@router.post("/hotline/calls/{clue_id}/recording")
async def recording_upload(
    request: Request, clue_id: str, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Session login, then the CSRF field read from the stream (not ``CsrfProtected``, which would make
    Starlette parse and spool the whole body)."""
    return await _receive_files(request, principal, session, runtime, kind=RECORDING, clue_id=clue_id)


@router.get("/letters/{clue_id}/pages")
async def pages_form(
    request: Request, clue_id: str, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    return await _upload_form(request, principal, session, runtime, PAGES, clue_id)


@router.post("/letters/{clue_id}/pages")
async def pages_upload(
    request: Request, clue_id: str, principal: CurrentStaffSession, session: SessionDep, runtime: RuntimeDep
) -> Response:
    return await _receive_files(request, principal, session, runtime, kind=PAGES, clue_id=clue_id)
