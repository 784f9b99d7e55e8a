"""Message APIs. Staff: ``GET/POST /api/v1/clues/{id}/messages``, ``POST …/messages/file`` (a cleaned file
for the reporter). Receipt holders: ``/api/v1/receipt/…`` (status and thread, replies, objections to a
finding) with the code in the ``X-Receipt-Code`` header or the JSON body — never in a URL."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from service.classification import classifier
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import CurrentStaff
from service.intake import follow_up
from service.messages import contact
from service.messages import service as messages_service
from service.platform.errors import Invalid

staff_router = APIRouter(prefix="/api/v1", tags=["messages"], responses=STAFF_ERRORS)
receipt_router = APIRouter(prefix="/api/v1/receipt", tags=["receipt holders"])

ERRORS = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "The caller's role may not exchange messages"},
    404: {"description": "No such clue, or not visible to the caller"},
    422: {"description": "Empty or too long message"},
}
WRONG_CODE = {404: {"description": "The code is wrong, revoked or malformed (one answer for all)"}}


UPLOAD_PATHS = ("/api/v1/clues/{clue_id}/messages/file",)  # streamed: exempt from the generic body limit


class AttachmentOut(BaseModel):
    id: str
    kind: str
    size: int
    for_reporter: bool = Field(
        default=False, description="Sent to the reporter: downloadable on the status page"
    )


class MessageOut(BaseModel):
    id: str
    direction: str = Field(description="to_reporter (from staff) or from_reporter")
    text: str
    created_at: datetime
    author_id: str | None = None
    attachments: list[AttachmentOut] = []


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=messages_service.MAX_MESSAGE_CHARS)]


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receipt: Annotated[str, Field(max_length=100)] | None = None


class ReceiptMessageIn(ReceiptIn):
    text: Annotated[str, Field(min_length=1, max_length=messages_service.MAX_MESSAGE_CHARS)]


class ReporterMessageOut(BaseModel):
    direction: str
    text: str
    created_at: datetime
    attachments: int = 0


class ReceiptObjectionIn(ReceiptIn):
    text: Annotated[str, Field(min_length=1, max_length=contact.MAX_NOTE_CHARS)]


class ReporterObjectionOut(BaseModel):
    received_at: datetime
    status: str = Field(description="received, reviewing (accepted for review), rejected, resolved")
    status_zh: str
    result: str | None = Field(description="resolved: finding_kept or finding_changed")
    text: str = Field(description="The objection as the reporter wrote it")
    answer: str = Field(description="The reason or result the reporter is told")


class ReceiptStatusOut(BaseModel):
    status: str
    status_en: str
    messages: list[ReporterMessageOut]
    objections: list[ReporterObjectionOut] = []
    new_receipt: str | None = Field(
        default=None,
        description="Set once when a code given out by phone was replaced: the old code no longer works.",
    )


def _out(view: messages_service.MessageView, *, staff: bool) -> MessageOut:
    return MessageOut(
        id=view.id,
        direction=view.direction,
        text=view.text,
        created_at=view.created_at,
        author_id=view.author_id if staff else None,
        attachments=[
            AttachmentOut(id=a.id, kind=a.kind, size=a.size, for_reporter=a.for_reporter)
            for a in view.attachments
        ],
    )


@staff_router.get(
    "/clues/{clue_id}/messages",
    summary="Read the conversation with the reporter (audited)",
    response_model=list[MessageOut],
    responses=ERRORS,
)
async def list_messages(
    clue_id: str, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> list[MessageOut]:
    """The thread with the reporter, oldest first (an audited read)."""
    views = await messages_service.staff_list(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    return [_out(v, staff=True) for v in views]


@staff_router.post(
    "/clues/{clue_id}/messages",
    summary="Send a message to the reporter",
    status_code=201,
    response_model=MessageOut,
    responses=ERRORS,
)
async def send_message(
    clue_id: str, body: MessageIn, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> MessageOut:
    """Send a message to the reporter. The reporter never learns which staff member wrote it."""
    view = await messages_service.staff_send(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys, text=body.text
    )
    return _out(view, staff=True)


@staff_router.post(
    "/clues/{clue_id}/messages/file",
    summary="Send a file to the reporter (cleaned; read on the status page)",
    status_code=201,
    response_model=MessageOut,
    responses={
        **ERRORS,
        409: {"description": "The clue has no reporter key (no receipt code): nothing to send to"},
        413: {"description": "File larger than the staff upload limit"},
        422: {"description": "File type not allowed, damaged, or its metadata cannot be removed"},
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def send_file(
    clue_id: str, request: Request, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> MessageOut:
    """The raw request body, streamed through the attachment pipeline (type from the bytes, metadata
    removed; a file that cannot be cleaned is refused), sealed for staff and for the reporter, who
    downloads it from the status page with the receipt code. Audited."""
    view = await messages_service.staff_send_file(
        session,
        clue_id=clue_id,
        principal=principal,
        runtime=runtime,
        store=runtime.blobs,
        chunks=request.stream(),
    )
    return _out(view, staff=True)


def _code(header: str | None, body: ReceiptIn | None) -> str:
    code = header or (body.receipt if body else None)
    if not code:
        raise Invalid("请提供查询码", message_en="send the receipt code in X-Receipt-Code or the body")
    return code[:100]


async def _open(
    request: Request, session: SessionDep, runtime: RuntimeDep, code: str
) -> follow_up.OpenedReceipt:
    web = runtime.settings.web
    return await follow_up.open_receipt(
        session,
        runtime=runtime,
        code_text=code,
        client=follow_up.client_address(
            request.client.host if request.client else None,
            request.headers.getlist("x-forwarded-for"),
            web.trusted_proxy_hops,
        ),
        throttle=follow_up.shared_throttle(request.app.state, web),
        floor_seconds=web.lookup_floor_seconds,
    )


@receipt_router.post(
    "/status",
    summary="Check a report's status with the receipt code",
    response_model=ReceiptStatusOut,
    responses=WRONG_CODE,
)
async def receipt_status(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    body: ReceiptIn | None = None,
    x_receipt_code: Annotated[str | None, Header(max_length=100)] = None,
) -> ReceiptStatusOut:
    """Status in plain words and the message thread, for whoever holds the code."""
    opened = await _open(request, session, runtime, _code(x_receipt_code, body))
    return await _status_out(session, opened)


@receipt_router.post(
    "/messages",
    summary="Reply to investigators with the receipt code",
    status_code=201,
    response_model=ReceiptStatusOut,
    responses=WRONG_CODE,
)
async def receipt_reply(
    request: Request,
    body: ReceiptMessageIn,
    session: SessionDep,
    runtime: RuntimeDep,
    x_receipt_code: Annotated[str | None, Header(max_length=100)] = None,
) -> ReceiptStatusOut:
    """Reply to investigators (text; files go through the web page)."""
    opened = await _open(request, session, runtime, _code(x_receipt_code, body))
    await messages_service.reporter_send(
        session,
        clue_id=opened.clue.id,
        code=opened.code,
        keys=runtime.keys,
        name_key=runtime.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL),
        text=body.text,
    )
    return await _status_out(session, opened)


@receipt_router.post(
    "/objections",
    summary="Object to the finding with the receipt code (real-name reporters)",
    status_code=201,
    response_model=ReceiptStatusOut,
    responses={
        **WRONG_CODE,
        409: {"description": "Anonymous report, no finding yet, or an objection already being handled"},
    },
)
async def receipt_objection(
    request: Request,
    body: ReceiptObjectionIn,
    session: SessionDep,
    runtime: RuntimeDep,
    x_receipt_code: Annotated[str | None, Header(max_length=100)] = None,
) -> ReceiptStatusOut:
    """A real-name reporter objects to the finding of their concluded report; the answer appears here."""
    opened = await _open(request, session, runtime, _code(x_receipt_code, body))
    await contact.reporter_object(
        session,
        clue_id=opened.clue.id,
        real_name=opened.clue.real_name,
        status=opened.clue.status,
        code=opened.code,
        sealing=runtime,
        text=body.text,
    )
    return await _status_out(session, opened)


async def _status_out(session: SessionDep, opened: follow_up.OpenedReceipt) -> ReceiptStatusOut:
    thread = await messages_service.reporter_list(session, clue_id=opened.clue.id, code=opened.code)
    objections = await contact.reporter_objections(session, clue_id=opened.clue.id, code=opened.code)
    return ReceiptStatusOut(
        status=opened.status.zh,
        status_en=opened.status.en,
        messages=[
            ReporterMessageOut(
                direction=m.direction, text=m.text, created_at=m.created_at, attachments=len(m.attachments)
            )
            for m in thread
        ],
        objections=[
            ReporterObjectionOut(
                received_at=o.received_at,
                status=o.status,
                status_zh=contact.OBJECTION_STATUSES[o.status][0],
                result=o.result,
                text=o.statement,
                answer=o.answer,
            )
            for o in objections
        ],
        new_receipt=opened.code if opened.replaced else None,
    )
