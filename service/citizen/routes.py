"""The public pages: landing, report form, receipt, status and reply, poster. Server-rendered; no JavaScript
needed.

Uploads are parsed from the request stream (``multipart.StreamingForm``) and each file goes straight into
``service.attachments.pipeline.store_attachment`` (sniff, strip metadata, encrypt, store), so no plaintext
touches a disk. Reports go through the one intake entry (``runtime.intake``), as the API's do.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments import service as attachments_service
from service.attachments.pipeline import AttachmentTooLarge, store_attachment
from service.attachments.service import UploadedFile
from service.attachments.sniff import DisallowedFileType
from service.audit.service import PUBLIC_ACTOR
from service.citizen import i18n, identity, journey
from service.citizen.guard import (
    CSRF_COOKIE,
    FairQueue,
    ProofOfWork,
    QueueFull,
    csrf_field,
    csrf_ok,
    new_csrf_cookie,
    origin_ok,
)
from service.citizen.once import RECEIPT_COOKIE, Begun, FormKey, ReceiptViews, SubmissionKeys
from service.classification import classifier
from service.compartments import items as clue_items
from service.http.multipart import BodyTooLarge, FieldTooLarge, MalformedForm, Part, StreamingForm
from service.intake import follow_up, networks
from service.intake import service as intake_service
from service.intake.receipts import format_receipt
from service.intake.schemas import TipIn
from service.messages import contact
from service.messages import service as messages_service
from service.platform.blobs import LocalBlobStore
from service.platform.errors import DomainError
from service.platform.runtime import Runtime
from service.platform.settings import SettingsError, WebSettings
from service.platform.timeutil import utcnow


@asynccontextmanager
async def _refuse_placeholders(app: FastAPI) -> AsyncIterator[None]:
    """Runs when a process that serves the public pages starts (after the app's own start): in production,
    no page may show a placeholder committee name, hotline, mailbox, address or category."""
    runtime: Runtime = app.state.runtime
    if runtime.settings.environment == "production":
        found = identity.problems(runtime.settings.web)
        if found:
            raise SettingsError("the public pages cannot start in production: " + "; ".join(found))
    yield


router = APIRouter(include_in_schema=False, lifespan=_refuse_placeholders)

UPLOAD_PATHS = ("/report", "/status/reply")  # parsed as streams; exempt from the generic body-size limit
STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {
    "web.css": "text/css; charset=utf-8",
    "web.js": "text/javascript; charset=utf-8",
    "poster.css": "text/css; charset=utf-8",
    "favicon.ico": "image/x-icon",
}
STATIC = {name: (STATIC_DIR / name).read_bytes() for name in STATIC_TYPES}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
REPORT_FIELDS = (
    "csrf", "lang", "pow_challenge", "pow_nonce", "submission_key", "accused_name", "accused_unit",
    "accused_position", "accused_rank", "accused_region", "text", "incident_time", "incident_place",
    "category_hint", "identity", "contact_name", "contact_phone", "contact_email", "contact_address",
)  # fmt: skip
REPLY_FIELDS = ("csrf", "lang", "code", "new_code", "text")
_ = i18n.gettext


@dataclass
class WebState:
    settings: WebSettings
    pow: ProofOfWork
    queue: FairQueue
    throttle: follow_up.FailureThrottle
    store: LocalBlobStore
    keys: SubmissionKeys
    views: ReceiptViews


def web_state(request: Request) -> WebState:
    state = getattr(request.app.state, "web", None)
    if state is None:
        runtime: Runtime = request.app.state.runtime
        settings = runtime.settings.web
        state = WebState(
            settings=settings,
            pow=ProofOfWork(
                runtime.lookup_key("web-pow"), bits=settings.pow_bits, max_age=settings.pow_max_age_seconds
            ),
            queue=FairQueue(
                concurrency=settings.queue_concurrency,
                waiting=settings.queue_waiting,
                wait_seconds=settings.queue_wait_seconds,
            ),
            throttle=follow_up.shared_throttle(request.app.state, settings),
            store=runtime.blobs,
            keys=SubmissionKeys(
                runtime.lookup_key("web-submission-key"),
                max_age=settings.submission_key_max_age_seconds,
                write=runtime.write,
            ),
            views=ReceiptViews(runtime.lookup_key("web-receipt-view")),
        )
        request.app.state.web = state
    return state


def _same_site(request: Request) -> bool:
    headers = request.headers
    return origin_ok(headers.get("origin"), headers.get("host"), headers.get("sec-fetch-site"))


def _client(request: Request) -> str:
    """The keyed-throttle input: the peer, or the X-Forwarded-For entry the trusted proxies vouch for."""
    return follow_up.client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        web_state(request).settings.trusted_proxy_hops,
    )


# --- Rendering --------------------------------------------------------------------------------------


def render(request: Request, template: str, *, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    state = web_state(request)
    runtime: Runtime = request.app.state.runtime
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = not cookie or len(cookie) > 64
    if fresh:
        cookie = new_csrf_cookie()
    base = {
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "lang_query": "?lang=en" if lang == "en" else "",
        "path": request.url.path if request.method == "GET" else "/",
        "site_name": i18n.gettext(lang, "Political-legal officer misconduct reports"),
        "web": state.settings,
        "who": identity.public_identity(state.settings),
        "date": lambda moment: journey.local_date(moment, lang),
        "datetime": lambda moment: journey.local_datetime(moment, lang),
        "max_mb": state.settings.attachment_max_bytes // (1024 * 1024) or 1,
        "csrf": csrf_field(runtime.lookup_key("web-csrf"), cookie or ""),
        "errors": {},
        "field_ids": {},
        "with_script": True,
        "sep": " " if lang == "en" else "",  # between two sentences: Chinese puts no space
    }
    base.update(context)
    base["field_ids"] = {name: f"f-{name}" for name in base["errors"]}
    html = i18n.environment(lang).get_template(template).render(**base)
    response = HTMLResponse(html, status_code=status)
    secure(response)
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            cookie or "",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


def secure(response: Response, *, no_store: bool = True) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if no_store:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def problem(request: Request, lang: str, status: int, title: str, text: str, back: str = "/") -> HTMLResponse:
    response = render(request, "problem.html", lang=lang, status=status, title=title, text=text, back=back)
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


def _categories() -> list[Any]:
    return identity.public_categories()


# --- Pages ------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, lang: str | None = None) -> HTMLResponse:
    return render(request, "landing.html", lang=i18n.pick(lang), categories=_categories())


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return secure(Response(status_code=404))
    response = Response(STATIC[name], media_type=STATIC_TYPES[name])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return secure(response, no_store=False)


@router.get("/favicon.ico")
async def favicon() -> Response:
    return await static("favicon.ico")


@router.get("/poster", response_class=HTMLResponse)
async def poster(request: Request, lang: str | None = None) -> HTMLResponse:
    """An A4 page to print and put up where people wait (police stations, courts, service halls)."""
    settings = web_state(request).settings
    base = settings.public("public_url") or str(request.base_url)
    address = base.rstrip("/") + "/report"
    qr = segno.make(address, error="m").svg_inline(scale=1, border=4, omitsize=True)
    return render(request, "poster.html", lang=i18n.pick(lang), address=address, qr=qr, with_script=False)


@router.get("/report", response_class=HTMLResponse)
async def report_form(request: Request, lang: str | None = None) -> HTMLResponse:
    return _report_page(request, i18n.pick(lang), form={}, errors={})


def _report_page(
    request: Request, lang: str, *, form: dict[str, str], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    state = web_state(request)
    runtime: Runtime = request.app.state.runtime
    return render(
        request,
        "report.html",
        lang=lang,
        status=status,
        form=form,
        errors=errors,
        categories=_categories(),
        max_text=runtime.settings.max_text_chars,
        pow_bits=state.settings.pow_bits,
        pow_challenge=state.pow.challenge() if state.settings.pow_bits else "",
        # In memory only: the address is neither stored, logged nor counted, nor is the answer.
        supervised_network=networks.on_supervised_network(
            _client(request), state.settings.supervised_networks
        ),
        # A form shown again keeps its key while it is valid, so a resend of it is still recognised.
        submission_key=form.get("submission_key")
        if state.keys.check(form.get("submission_key"))
        else state.keys.issue(),
    )


_ERROR_FIELDS = {
    ("text",): "text",
    ("category_hint",): "category_hint",
    **{("accused", k): f"accused_{k}" for k in ("name", "unit", "position", "rank", "region")},
    **{("incident", k): f"incident_{k}" for k in ("time", "place")},
    **{("submitter", k): f"contact_{k}" for k in ("name", "phone", "email", "address")},
}


def validate_report(form: dict[str, str], lang: str, max_text: int) -> tuple[TipIn | None, dict[str, str]]:
    """The form's fields as the API's ``TipIn``, or errors by field name (values never echoed in logs)."""
    real_name = form.get("identity") == "real_name"
    tip_data: dict[str, Any] = {
        "text": form.get("text", ""),
        "anonymous": not real_name,
        "accused": {
            k: form.get(f"accused_{k}") or None for k in ("name", "unit", "position", "rank", "region")
        },
        "incident": {k: form.get(f"incident_{k}") or None for k in ("time", "place")},
        "category_hint": form.get("category_hint") or None,
        # An anonymous report drops anything typed into the contact fields.
        "submitter": {k: form.get(f"contact_{k}") or None for k in ("name", "phone", "email", "address")}
        if real_name
        else {},
    }
    errors: dict[str, str] = {}
    tip = None
    try:
        tip = TipIn.model_validate(tip_data)
    except ValidationError as exc:
        for err in exc.errors():
            name = _ERROR_FIELDS.get(tuple(str(p) for p in err["loc"]), "text")
            kind = err["type"]
            if name == "text" and kind in ("string_too_short", "missing"):
                errors.setdefault(name, _(lang, "Please describe what happened."))
            elif kind == "string_too_long":
                errors.setdefault(name, _(lang, "This is too long."))
            elif name == "contact_email":
                errors.setdefault(name, _(lang, "Enter an email address like name@example.com."))
            elif name == "contact_phone":
                errors.setdefault(name, _(lang, "A phone number has digits, spaces and + - ( ) only."))
            else:
                errors.setdefault(name, _(lang, "Please check this field."))
    if not errors.get("text") and len((form.get("text") or "").strip()) > max_text:
        errors["text"] = _(lang, "This is too long.")
    hint = form.get("category_hint")
    if hint and hint not in classifier.current_taxonomy().category_ids:
        errors["category_hint"] = _(lang, "Please choose a type from the list.")
    if real_name:
        if not (form.get("contact_name") or "").strip():
            errors.setdefault("contact_name", _(lang, "For a real-name report, enter your name."))
        if not (form.get("contact_phone") or "").strip() and not (form.get("contact_email") or "").strip():
            errors.setdefault("contact_phone", _(lang, "Enter a phone number or an email address."))
    return (None if errors else tip), errors


async def _store_file(
    part: Part, state: WebState, runtime: Runtime, wrap_key: clue_items.Seal | None = None
) -> UploadedFile:
    """One uploaded file through the pipeline. ``wrap_key``: a follow-up's files go to the clue's own key
    (compartments); a new report's file key stays in memory until registration seals it to the clue's own
    key (its clue does not exist yet)."""
    record = await store_attachment(
        part.chunks(),
        store=state.store,
        wrap_key=wrap_key or attachments_service.keep_key,
        max_size=state.settings.attachment_max_bytes,
        # An original's metadata identifies (GPS, device, author): its key goes to the identity key.
        wrap_original_key=runtime.keys.seal_identity if state.settings.keep_originals else None,
        # A file that cannot be cleaned with confidence is kept sealed to the identity key, never shown.
        wrap_sealed_key=runtime.keys.seal_identity,
        scratch_dir=runtime.settings.attachment_scratch_dir,
    )
    return UploadedFile(
        record=record,
        filename=(part.filename or "")[:255] or None,
        original=record.original,
        # A file that could not be cleaned is already sealed to the identity key.
        key_pending=wrap_key is None and not record.sealed_reason,
    )


async def _forget(state: WebState, uploads: Sequence[UploadedFile]) -> None:
    for upload in uploads:
        await state.store.delete(upload.record.blob_id)
        if upload.original is not None:
            await state.store.delete(upload.original.blob_id)


def _too_large(lang: str, number: int, settings: WebSettings) -> str:
    size = settings.attachment_max_bytes // (1024 * 1024) or 1
    return _(lang, "File %(n)s is too large: each file may be at most %(size)s MB.", n=number, size=size)


def _files_too_large(lang: str, settings: WebSettings) -> str:
    size = settings.attachment_max_bytes // (1024 * 1024) or 1
    count = settings.attachment_max_count
    return _(
        lang,
        "The files are larger than allowed: at most %(count)s files of %(size)s MB each.",
        count=count,
        size=size,
    )


def _wrong_type(lang: str, number: int) -> str:
    allowed = _(lang, "Allowed: images, PDF, Office documents, audio, plain text.")
    return _(lang, "File %(n)s is not an allowed type, or is damaged.", n=number) + " " + allowed


class _Refused(Exception):
    def __init__(self, response: HTMLResponse) -> None:
        self.response = response


def _open_streamed_form(
    request: Request, state: WebState, lang: str, *, back: str
) -> StreamingForm | Response:
    """A same-site multipart body, parsed as it streams (never spooled); or the refusal page to send."""
    if not _same_site(request):
        return _csrf_refused(request, lang, back)
    try:
        return StreamingForm(
            request.stream(), request.headers.get("content-type", ""), max_body=state.settings.body_limit()
        )
    except MalformedForm:
        return problem(
            request, lang, 400, _(lang, "Something went wrong"), _(lang, "The form could not be read.")
        )


@router.post("/report", response_class=HTMLResponse)
async def submit_report(request: Request) -> Response:
    state = web_state(request)
    runtime: Runtime = request.app.state.runtime
    lang = i18n.DEFAULT
    form = _open_streamed_form(request, state, lang, back="/report")
    if isinstance(form, Response):
        return form
    fields: dict[str, str] = {}
    uploads: list[UploadedFile] = []
    file_error: str | None = None
    checked: tuple[TipIn | None, dict[str, str]] | None = None
    files_seen = 0
    form_key: FormKey | None = None
    view = ""  # the sealed receipt, once the report is filed

    async def release_claim(claimed: FormKey) -> None:
        # shielded: a dropped connection must not leave the claim standing until it times out
        await asyncio.shield(state.keys.finish(claimed, view or None))

    async def before_files(stack: AsyncExitStack) -> tuple[TipIn | None, dict[str, str]]:
        """Runs once, before the first file is stored (or at the end): CSRF, validation, then the gate."""
        nonlocal lang, form_key
        lang = i18n.pick(fields.get("lang"))
        if not csrf_ok(runtime.lookup_key("web-csrf"), request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
            raise _Refused(_csrf_refused(request, lang, "/report"))
        form_key = state.keys.check(fields.get("submission_key"))
        tip, errors = validate_report(fields, lang, runtime.settings.max_text_chars)
        if form_key is None:
            errors["submit"] = _(
                lang, "This form was open too long to be sent. Please check it and send it again."
            )
            fields.pop("submission_key", None)
            tip = None
        if tip is None:
            return tip, errors
        # Claim the form before storing its files or taking a place in the queue: a second copy (a double
        # tap, a resend, on any server process) waits here for the first and files nothing.
        begun = await state.keys.begin(form_key)
        if begun.outcome != "new":
            raise _Refused(_answer_resend(request, lang, begun))
        stack.push_async_callback(release_claim, form_key)
        if not (
            state.settings.pow_bits == 0
            or state.pow.verify(fields.get("pow_challenge"), fields.get("pow_nonce"))
        ):
            try:
                await stack.enter_async_context(state.queue.slot(_client(request)))
            except QueueFull:
                raise _Refused(_busy(request, lang)) from None
        return tip, errors

    async with AsyncExitStack() as stack:
        try:
            async for part in form.parts():
                if not part.is_file:
                    if checked is not None and part.name in REPORT_FIELDS:
                        raise MalformedForm("a field after the files")  # it would miss the checks
                    if part.name in REPORT_FIELDS and part.name not in fields:
                        fields[part.name] = (await part.read_text(state.settings.field_bytes_limit())).strip()
                    continue
                if not part.filename:
                    continue  # an empty file input
                files_seen += 1
                if checked is None:
                    checked = await before_files(stack)
                if checked[0] is None or file_error:
                    continue  # the form will be shown again: do not store files for it
                if len(uploads) >= state.settings.attachment_max_count:
                    file_error = _(
                        lang, "Too many files: at most %(n)s.", n=state.settings.attachment_max_count
                    )
                    continue
                try:
                    uploads.append(await _store_file(part, state, runtime))
                except AttachmentTooLarge:
                    file_error = _too_large(lang, files_seen, state.settings)
                except DisallowedFileType:
                    file_error = _wrong_type(lang, files_seen)
            if checked is None:
                checked = await before_files(stack)
        except _Refused as refused:
            await _forget(state, uploads)
            return refused.response
        except BodyTooLarge:
            await _forget(state, uploads)
            return problem(request, lang, 413, _(lang, "Too large"), _files_too_large(lang, state.settings))
        except (MalformedForm, FieldTooLarge):
            await _forget(state, uploads)
            return problem(
                request, lang, 400, _(lang, "Something went wrong"), _(lang, "The form could not be read.")
            )
        except BaseException:
            await _forget(state, uploads)
            raise
        tip, errors = checked
        if file_error:
            errors = {**errors, "files": file_error}
        if tip is None or file_error:
            await _forget(state, uploads)
            if files_seen:
                errors.setdefault("files", _(lang, "Files were not kept. Please choose them again."))
            return _report_page(request, lang, form=fields, errors=errors, status=422)
        try:
            submitted = await _submit(runtime, tip, uploads)
            view = state.views.seal(
                {
                    "code": format_receipt(submitted.receipt),
                    "files": len(uploads),
                    "received": utcnow().isoformat(),
                    "real_name": not tip.anonymous,
                    "lang": lang,
                }
            )
        except DomainError as exc:
            await _forget(state, uploads)
            message = exc.message if lang != "en" else exc.message_en
            return problem(
                request, lang, exc.status_code, _(lang, "Something went wrong"), message, "/report"
            )
        except BaseException:
            await _forget(state, uploads)
            raise
        return _to_receipt(request, view)


def _to_receipt(request: Request, view: str) -> Response:
    """Post/redirect/get: the receipt travels sealed in a session cookie only ``GET /receipt`` receives."""
    response = secure(RedirectResponse("/receipt", status_code=303))
    response.set_cookie(
        RECEIPT_COOKIE,
        view,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/receipt",
    )
    return response


def _answer_resend(request: Request, lang: str, begun: Begun) -> Response:
    if begun.outcome == "joined" and begun.view:
        return _to_receipt(request, begun.view)  # a double tap: the first answer never reached the page
    if begun.outcome == "busy":
        return problem(
            request,
            lang,
            503,
            _(lang, "Still being sent"),
            _(lang, "This report is still being sent. Nothing was filed twice. Wait a minute, then check."),
            "/report",
        )
    return _already_received(request, lang)


def _already_received(request: Request, lang: str) -> HTMLResponse:
    return render(request, "already_received.html", lang=lang)


@router.get("/receipt", response_class=HTMLResponse)
async def receipt_page(request: Request, lang: str | None = None) -> Response:
    """The receipt, once: a reload, the back button or a copied link shows that it was shown, files
    nothing and never shows the code again."""
    state = web_state(request)
    data = state.views.open_once(request.cookies.get(RECEIPT_COOKIE))
    if data is None:
        response = render(request, "receipt_gone.html", lang=i18n.pick(lang))
    else:
        lang = i18n.pick(data.get("lang"))
        timeline = journey.Timeline.from_received(datetime.fromisoformat(data["received"]))
        response = render(
            request,
            "receipt.html",
            lang=lang,
            code_groups=str(data["code"]).split(),
            attachments=int(data.get("files", 0)),
            real_name=bool(data.get("real_name")),
            timeline=timeline,
            keep_on_page=True,
        )
    response.delete_cookie(RECEIPT_COOKIE, path="/receipt", httponly=True, samesite="strict")
    return response


async def _submit(
    runtime: Runtime, tip: TipIn, uploads: Sequence[UploadedFile]
) -> intake_service.SubmittedTip:
    """The one intake entry, as ``POST /api/v1/tips`` (which also makes the reporter key), with the
    attachment rows written in the registration's own transaction."""

    async def add_uploads(session: AsyncSession, submitted: intake_service.SubmittedTip) -> list[Any]:
        _, entry = attachments_service.stage_attachments(
            session,
            clue_id=submitted.clue_id,
            message_id=None,
            files=uploads,
            keys=runtime.keys,
            actor=PUBLIC_ACTOR,
            hour_only=tip.anonymous,
            # The files' keys, held in memory since upload, go to the clue's own key (registered just now).
            seal_pending=await clue_items.sealer(session, clue_id=submitted.clue_id, keys=runtime.keys),
        )
        return [entry] if entry is not None else []

    return await runtime.intake.submit(
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
        also=add_uploads if uploads else None,
    )


def _csrf_refused(request: Request, lang: str, back: str) -> HTMLResponse:
    return problem(
        request,
        lang,
        403,
        _(lang, "Please try again"),
        _(
            lang,
            "The form expired or came from elsewhere. Nothing was stored. Open the page again and resend.",
        ),
        back,
    )


def _busy(request: Request, lang: str) -> HTMLResponse:
    return problem(
        request,
        lang,
        503,
        _(lang, "Busy"),
        _(lang, "Many reports are arriving right now. Nothing was stored. Please try again in a minute."),
        "/report",
    )


# --- Status and replies -----------------------------------------------------------------------------


@router.get("/status", response_class=HTMLResponse)
async def status_form(request: Request, lang: str | None = None) -> HTMLResponse:
    return render(request, "status_lookup.html", lang=i18n.pick(lang))


@router.post("/status", response_class=HTMLResponse)
async def status_lookup(request: Request) -> Response:
    state = web_state(request)
    runtime: Runtime = request.app.state.runtime
    body = await request.body()
    fields = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items() if v}
    lang = i18n.pick(fields.get("lang"))
    if not _same_site(request) or not csrf_ok(
        runtime.lookup_key("web-csrf"), request.cookies.get(CSRF_COOKIE), fields.get("csrf")
    ):
        return _csrf_refused(request, lang, "/status")
    async with runtime.session_factory() as session:
        try:
            opened = await follow_up.open_receipt(
                session,
                runtime=runtime,
                code_text=fields.get("code", "")[:100],
                client=_client(request),
                throttle=state.throttle,
                floor_seconds=state.settings.lookup_floor_seconds,
            )
        except follow_up.WrongCode:
            return _wrong_code(request, lang)
        response = await _status_view(request, session, opened, lang, new_code=fields.get("new_code") == "1")
        await session.commit()
    return response


def _wrong_code(request: Request, lang: str) -> HTMLResponse:
    errors = {"code": _(lang, "The receipt code is not correct or no longer valid. Check it and try again.")}
    return render(request, "status_lookup.html", lang=lang, status=404, errors=errors)


async def _status_view(
    request: Request,
    session: Any,
    opened: follow_up.OpenedReceipt,
    lang: str,
    *,
    sent: bool = False,
    errors: dict[str, str] | None = None,
    reply_text: str = "",
    status: int = 200,
    new_code: bool = False,
    objection_text: str = "",
    objected: bool = False,
) -> HTMLResponse:
    """``new_code``: the page before showed a replacement code not yet confirmed as written down; it stays."""
    thread = await messages_service.reporter_list(session, clue_id=opened.clue.id, code=opened.code)
    objections = await contact.reporter_objections(session, clue_id=opened.clue.id, code=opened.code)
    received = await journey.received_at(session, opened.clue.id)
    return render(
        request,
        "status_view.html",
        lang=lang,
        status=status,
        stage=journey.stage(opened.clue.status, opened.clue.assignee_id),
        timeline=journey.Timeline.from_received(received) if received else None,
        messages=thread,
        code=format_receipt(opened.code),
        new_code_groups=format_receipt(opened.code).split() if opened.replaced or new_code else None,
        sent=sent,
        errors=errors or {},
        reply_text=reply_text,
        call_record=opened.clue.channel == "hotline",  # the caller may read and confirm it (call_record.py)
        objections=objections,
        # a real-name reporter may object to the finding once there is one, one objection at a time
        may_object=opened.clue.real_name
        and opened.clue.status in contact.CONCLUDED
        and not any(o.status in contact.OPEN_OBJECTION for o in objections),
        objection_text=objection_text,
        objected=objected,
        max_objection=contact.MAX_NOTE_CHARS,
    )


@router.post("/status/reply", response_class=HTMLResponse)
async def status_reply(request: Request) -> Response:
    state = web_state(request)
    runtime: Runtime = request.app.state.runtime
    lang = i18n.DEFAULT
    form = _open_streamed_form(request, state, lang, back="/status")
    if isinstance(form, Response):
        return form
    fields: dict[str, str] = {}
    uploads: list[UploadedFile] = []
    file_error: str | None = None
    opened: follow_up.OpenedReceipt | None = None
    files_seen = 0

    seal: clue_items.Seal | None = None

    async def open_code() -> follow_up.OpenedReceipt:
        nonlocal lang, seal
        lang = i18n.pick(fields.get("lang"))
        if not csrf_ok(runtime.lookup_key("web-csrf"), request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
            raise _Refused(_csrf_refused(request, lang, "/status"))
        async with runtime.session_factory() as session:
            try:
                found = await follow_up.open_receipt(
                    session,
                    runtime=runtime,
                    code_text=fields.get("code", "")[:100],
                    client=_client(request),
                    throttle=state.throttle,
                    floor_seconds=state.settings.lookup_floor_seconds,
                )
            except follow_up.WrongCode:
                raise _Refused(_wrong_code(request, lang)) from None
            seal = await clue_items.sealer(session, clue_id=found.clue.id, keys=runtime.keys)
            await session.commit()
        return found

    try:
        async for part in form.parts():
            if not part.is_file:
                if part.name in REPLY_FIELDS and part.name not in fields:
                    fields[part.name] = (await part.read_text(state.settings.field_bytes_limit())).strip()
                continue
            if not part.filename:
                continue
            files_seen += 1
            if opened is None:
                opened = await open_code()
            if file_error:
                continue
            if len(uploads) >= state.settings.attachment_max_count:
                file_error = _(lang, "Too many files: at most %(n)s.", n=state.settings.attachment_max_count)
                continue
            try:
                uploads.append(await _store_file(part, state, runtime, wrap_key=seal))
            except AttachmentTooLarge:
                file_error = _too_large(lang, files_seen, state.settings)
            except DisallowedFileType:
                file_error = _wrong_type(lang, files_seen)
        if opened is None:
            opened = await open_code()
    except _Refused as refused:
        await _forget(state, uploads)
        return refused.response
    except BodyTooLarge:
        await _forget(state, uploads)
        return problem(request, lang, 413, _(lang, "Too large"), _files_too_large(lang, state.settings))
    except (MalformedForm, FieldTooLarge):
        await _forget(state, uploads)
        return problem(
            request, lang, 400, _(lang, "Something went wrong"), _(lang, "The form could not be read.")
        )
    except BaseException:
        await _forget(state, uploads)
        raise
    text = fields.get("text", "")
    errors: dict[str, str] = {}
    if file_error:
        errors["files"] = file_error
    elif not text and not uploads:
        errors["text"] = _(lang, "Write a message or choose a file.")
    elif len(text) > messages_service.MAX_MESSAGE_CHARS:
        errors["text"] = _(lang, "This is too long.")
    async with runtime.session_factory() as session:
        await follow_up.resume(session, opened)  # a new transaction for the receipt opened above
        if errors:
            await _forget(state, uploads)
            response = await _status_view(
                request,
                session,
                opened,
                lang,
                errors=errors,
                reply_text=text,
                status=422,
                new_code=fields.get("new_code") == "1",
            )
            await session.commit()
            return response
        try:
            await messages_service.reporter_send(
                session,
                clue_id=opened.clue.id,
                code=opened.code,
                keys=runtime.keys,
                name_key=runtime.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL),
                text=text,
                files=uploads,
            )
            response = await _status_view(
                request, session, opened, lang, sent=True, new_code=fields.get("new_code") == "1"
            )
            await session.commit()
        except BaseException:
            await _forget(state, uploads)
            raise
    return response


# --- Files staff sent, and objections to a finding (real-name reporters) --------------------------------

STATUS_FORM_FIELDS = ("csrf", "lang", "code", "new_code", "file", "text")


async def _status_form(request: Request) -> tuple[dict[str, str], str, HTMLResponse | None]:
    """A small urlencoded POST from the status page (the generic body limit has capped it): its fields, the
    language, and the refusal to answer with when it is cross-site or its CSRF token is wrong."""
    runtime: Runtime = request.app.state.runtime
    body = (await request.body()).decode("utf-8", "replace")
    parsed = urllib.parse.parse_qs(body, keep_blank_values=True)
    fields = {k: v[0] for k, v in parsed.items() if k in STATUS_FORM_FIELDS and v}
    lang = i18n.pick(fields.get("lang"))
    if not _same_site(request) or not csrf_ok(
        runtime.lookup_key("web-csrf"), request.cookies.get(CSRF_COOKIE), fields.get("csrf")
    ):
        return fields, lang, _csrf_refused(request, lang, "/status")
    return fields, lang, None


async def _open_status(
    request: Request, session: AsyncSession, fields: dict[str, str]
) -> follow_up.OpenedReceipt:
    state = web_state(request)
    return await follow_up.open_receipt(
        session,
        runtime=request.app.state.runtime,
        code_text=fields.get("code", "")[:100],
        client=_client(request),
        throttle=state.throttle,
        floor_seconds=state.settings.lookup_floor_seconds,
    )


@router.post("/status/file")
async def status_file(request: Request) -> Response:
    """Download a file the investigators sent, with the code in the POST body (never in a URL): opened
    with the reporter key, the cleaned copy only, verified as it streams; audited."""
    fields, lang, refused = await _status_form(request)
    if refused:
        return refused
    runtime: Runtime = request.app.state.runtime
    async with runtime.session_factory() as session:
        try:
            opened = await _open_status(request, session, fields)
        except follow_up.WrongCode:
            return _wrong_code(request, lang)
        try:
            download = await messages_service.reporter_download(
                session,
                clue_id=opened.clue.id,
                code=opened.code,
                attachment_id=fields.get("file", ""),
                store=runtime.blobs,
            )
        except DomainError:
            await session.rollback()
            return problem(
                request,
                lang,
                404,
                _(lang, "File not available"),
                _(lang, "This file cannot be downloaded. Open the progress page again and try once more."),
                "/status",
            )
        await session.commit()
    response = StreamingResponse(
        download.chunks,
        media_type=download.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Content-Length": str(download.size),
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
    secure(response)
    return response


@router.post("/status/objection", response_class=HTMLResponse)
async def status_objection(request: Request) -> Response:
    """A real-name reporter objects to the finding; the page shows it and, later, the answer."""
    fields, lang, refused = await _status_form(request)
    if refused:
        return refused
    runtime: Runtime = request.app.state.runtime
    text = fields.get("text", "").strip()
    new_code = fields.get("new_code") == "1"
    async with runtime.session_factory() as session:
        try:
            opened = await _open_status(request, session, fields)
        except follow_up.WrongCode:
            return _wrong_code(request, lang)
        error: str | None = None
        if not text:
            error = _(lang, "Write what you object to and why.")
        elif len(text) > contact.MAX_NOTE_CHARS:
            error = _(lang, "This is too long.")
        else:
            try:
                await contact.reporter_object(
                    session,
                    clue_id=opened.clue.id,
                    real_name=opened.clue.real_name,
                    status=opened.clue.status,
                    code=opened.code,
                    sealing=runtime,
                    text=text,
                )
            except DomainError as exc:  # refused before anything was written (contact.reporter_object)
                error = _objection_refusal(lang, exc)
        response = await _status_view(
            request,
            session,
            opened,
            lang,
            errors={"objection": error} if error else None,
            objection_text=text if error else "",
            status=422 if error else 200,
            new_code=new_code,
            objected=error is None,
        )
        await session.commit()
    return response


def _objection_refusal(lang: str, exc: DomainError) -> str:
    """The domain's reason in the reporter's language (the domain speaks Chinese and English)."""
    return exc.message if lang == i18n.DEFAULT or not exc.message_en else exc.message_en
