"""HTTP edge pieces shared by every router: error rendering, the body-size limit, privacy-safe logging."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.platform.errors import DomainError

log = logging.getLogger("tipline.http")


def error_body(code: str, message: str, message_en: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "message_en": message_en, **extra}}


def domain_error_response(exc: DomainError) -> JSONResponse:
    """A refused request as JSON (what every router answers; the staff pages show it as a page)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if exc.status_code == 503:
        headers = {"Retry-After": "30"}
    return JSONResponse(
        error_body(exc.code, exc.message, exc.message_en), status_code=exc.status_code, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Field paths and reasons only: the submitted values are never echoed or logged.
        fields = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body", "problem": err["msg"]}
            for err in exc.errors()
        ]
        body = error_body(
            "invalid", "提交的内容有误，请检查标出的字段。", "Some fields are invalid.", fields=fields
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        body = error_body(
            "temporarily_unavailable",
            "系统暂时无法处理，请稍后再试。",
            "Temporarily unavailable; retry later.",
        )
        return JSONResponse(body, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # The type only: exception messages may carry input, and input may identify someone.
        log.error("unhandled error: %s", type(exc).__name__)
        return JSONResponse(
            error_body("internal", "系统出错，请稍后再试。", "Internal error."), status_code=500
        )


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes with 413, by Content-Length or while reading, before any handler
    runs (so an oversize request writes nothing). The body is read up to the limit, then replayed.

    Streaming upload routes enforce their own limits as they stream; they are listed in ``exempt_paths``
    as exact paths or route templates (``"/api/v1/letters/{clue_id}/pages"``: a ``{name}`` matches one
    non-empty path segment). Nothing else is exempt: not a longer path, not a trailing slash."""

    def __init__(self, app: ASGIApp, *, limit: int, exempt_paths: Iterable[str] = ()):
        self.app, self.limit = app, limit
        paths = tuple(exempt_paths)
        self.exact = frozenset(p for p in paths if "{" not in p)
        self.templates = tuple(_route_pattern(p) for p in paths if "{" in p)

    def exempt(self, path: str) -> bool:
        return path in self.exact or any(t.fullmatch(path) for t in self.templates)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _too_large(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await _too_large(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(
            scope,
            _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive),
            send,
        )


def _route_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _too_large(send: Send) -> None:
    response = JSONResponse(
        error_body("too_large", "提交的内容太大。", "Request body too large."), status_code=413
    )
    await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


# Errors every authenticated staff endpoint can answer; routers pass this as `responses=` so OpenAPI says so.
STAFF_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, unknown, expired or revoked token"},
    403: {"description": "The caller's role may not do this"},
}
