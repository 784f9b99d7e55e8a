"""The caller's side of a hotline call on the status page: read the operator's record of the call with
one's code, and confirm it or add corrections (kept with the clue as a ``caller_confirmation``).

Invariants:
- The code travels only in POST bodies (never in a URL), every POST is same-site and carries the page's
  CSRF token, and every lookup goes through ``follow_up.open_receipt`` (uniform wrong-code answer, timing,
  throttle; a read-aloud code is replaced on its first web use).
- The record is opened with the reporter key the code unlocks (``operator_record_for_caller``), so this
  process needs no case private key; each showing and each confirmation is audited as ``public``.
- Pages are ``Cache-Control: no-store`` (``routes.render``). User-facing text lives in the template
  (``call_record.html``), so the catalogs pick it up.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from service.citizen import i18n
from service.citizen.guard import CSRF_COOKIE, csrf_ok
from service.citizen.routes import _client, _csrf_refused, _same_site, _wrong_code, render, web_state
from service.intake import assisted as hotline_service
from service.intake import follow_up
from service.intake.receipts import format_receipt
from service.platform.errors import Invalid
from service.platform.runtime import Runtime
from service.platform.timeutil import LOCAL

router = APIRouter(include_in_schema=False)

FIELDS = ("csrf", "lang", "code", "new_code", "decision", "correction")


async def _fields(request: Request) -> dict[str, str]:
    """The urlencoded form (the generic body limit has already capped its size)."""
    body = (await request.body()).decode("utf-8", "replace")
    parsed = urllib.parse.parse_qs(body, keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if k in FIELDS and v}


def _local(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return ""


def _item(view: hotline_service.AdditionView) -> dict[str, Any]:
    content = view.content
    duration = content.get("duration_seconds")
    return {
        "kind": view.kind,
        "summary": content.get("summary"),
        "caller_words": content.get("caller_words"),
        "text": content.get("text"),
        "call_time": _local(content.get("call_started_at")),
        "minutes": max(1, round(duration / 60)) if isinstance(duration, int) and duration > 0 else None,
        "callback_allowed": content.get("callback_allowed"),
        "callback_how": content.get("callback_how"),
        "confirmed": content.get("confirmed"),
        "correction": content.get("correction"),
        "created": view.created_at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M"),
    }


async def _page(
    request: Request,
    session: AsyncSession,
    opened: follow_up.OpenedReceipt,
    lang: str,
    *,
    saved: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
    new_code: bool = False,
) -> HTMLResponse:
    views = await hotline_service.operator_record_for_caller(session, opened.clue.id, code=opened.code)
    return render(
        request,
        "call_record.html",
        lang=lang,
        status=status,
        items=[_item(v) for v in views],
        has_record=any(v.kind == hotline_service.CALL_RECORD for v in views),
        code=format_receipt(opened.code),
        # A replacement code stays on screen until the caller confirms it is written down (_new_code.html).
        new_code_groups=format_receipt(opened.code).split() if opened.replaced or new_code else None,
        saved=saved,
        error=error,
        form=form or {},
        max_correction=hotline_service.MAX_CORRECTION_CHARS,
    )


async def _open(
    request: Request, runtime: Runtime, session: AsyncSession, fields: dict[str, str]
) -> follow_up.OpenedReceipt:
    state = web_state(request)
    return await follow_up.open_receipt(
        session,
        runtime=runtime,
        code_text=fields.get("code", "")[:100],
        client=_client(request),
        throttle=state.throttle,
        floor_seconds=state.settings.lookup_floor_seconds,
    )


def _refused(request: Request, runtime: Runtime, fields: dict[str, str], lang: str) -> HTMLResponse | None:
    if not _same_site(request) or not csrf_ok(
        runtime.lookup_key("web-csrf"), request.cookies.get(CSRF_COOKIE), fields.get("csrf")
    ):
        return _csrf_refused(request, lang, "/status")
    return None


@router.post("/status/call-record", response_class=HTMLResponse)
async def show_call_record(request: Request) -> Response:
    """The operator's record of the call(s), opened with the code posted from the status page."""
    runtime: Runtime = request.app.state.runtime
    fields = await _fields(request)
    lang = i18n.pick(fields.get("lang"))
    if (refused := _refused(request, runtime, fields, lang)) is not None:
        return refused
    async with runtime.session_factory() as session:
        try:
            opened = await _open(request, runtime, session, fields)
        except follow_up.WrongCode:
            return _wrong_code(request, lang)
        response = await _page(request, session, opened, lang, new_code=fields.get("new_code") == "1")
        await session.commit()
    return response


@router.post("/status/call-record/confirm", response_class=HTMLResponse)
async def confirm_call_record(request: Request) -> Response:
    """Keep the caller's confirmation, or their correction, with the clue; then show the record again."""
    runtime: Runtime = request.app.state.runtime
    fields = await _fields(request)
    lang = i18n.pick(fields.get("lang"))
    if (refused := _refused(request, runtime, fields, lang)) is not None:
        return refused
    decision = fields.get("decision")
    correction = (fields.get("correction") or "").strip()
    async with runtime.session_factory() as session:
        try:
            opened = await _open(request, runtime, session, fields)
        except follow_up.WrongCode:
            return _wrong_code(request, lang)
        error = None
        if opened.clue.channel != "hotline":
            error = "no_record"
        elif decision not in ("confirm", "correct"):
            error = "decision"
        elif decision == "correct" and not correction:
            error = "correction_missing"
        elif len(correction) > hotline_service.MAX_CORRECTION_CHARS:
            error = "correction_long"
        if error is None:
            try:
                await hotline_service.record_caller_confirmation(
                    session, opened.clue.id, decision == "confirm", correction or None, runtime=runtime
                )
            except Invalid:
                error = "correction_invalid"
        if error is not None:
            response = await _page(
                request,
                session,
                opened,
                lang,
                error=error,
                form=fields,
                status=422,
                new_code=fields.get("new_code") == "1",
            )
        else:
            response = await _page(
                request, session, opened, lang, saved=decision, new_code=fields.get("new_code") == "1"
            )
        await session.commit()
    return response
