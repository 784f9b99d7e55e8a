"""FastAPI dependencies for server-rendered staff pages: the session cookie and CSRF.

- ``CurrentStaffSession``: the ``Principal`` behind the session cookie (same type as ``CurrentStaff``).
  Without a valid session it raises ``LoginRequired`` (401); ``install_login_redirect`` turns that into a
  303 to the login page for browsers.
- ``CsrfProtected`` (``require_csrf``): for every state-changing form: a valid session AND the form field
  ``csrf_token`` (or header ``X-CSRF-Token``) equal to that session's synchronizer token.
- ``csrf_token(request)``: the token to put in a form's hidden field (templates get it as ``csrf_token``).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from service.auth import sessions as session_service
from service.auth.service import Principal
from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import error_body
from service.platform.errors import Forbidden, Unauthenticated
from service.platform.runtime import Runtime
from service.platform.settings import Settings

LOGIN_PATH = "/staff/login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Unauthenticated):
    """No valid staff session: browsers are sent to the login page."""


def session_cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless Secure, Path=/ and host-only.
    return "__Host-tipline_staff" if settings.staff_cookie_secure else "tipline_staff"


def prelogin_cookie_name(settings: Settings) -> str:
    return "__Host-tipline_prelogin" if settings.staff_cookie_secure else "tipline_prelogin"


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        session_cookie_name(settings),
        token,
        max_age=settings.staff_session_absolute_hours * 3600,
        path="/",
        secure=settings.staff_cookie_secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie_name(settings),
        path="/",
        secure=settings.staff_cookie_secure,
        httponly=True,
        samesite="strict",
    )


async def current_staff_session(request: Request, session: SessionDep, runtime: RuntimeDep) -> Principal:
    settings = runtime.settings
    token = request.cookies.get(session_cookie_name(settings))
    if not token or len(token) > 200:
        raise LoginRequired("请先登录", message_en="please log in")
    try:
        principal, row = await session_service.authenticate_session(session, token=token, settings=settings)
    except Unauthenticated:
        raise LoginRequired(
            "登录已失效，请重新登录", message_en="your session has ended; log in again"
        ) from None
    request.state.staff_session_token = token
    request.state.staff_session_row = row
    request.state.staff_principal = principal
    # The session's activity is recorded and the transaction ended now: on SQLite every transaction holds
    # the one write lock, and the handler may register a report through the intake entry's connection.
    await session.commit()
    return principal


CurrentStaffSession = Annotated[Principal, Depends(current_staff_session)]


def csrf_token(request: Request) -> str:
    """The CSRF token for forms on this request's session (empty before login)."""
    token = getattr(request.state, "staff_session_token", None)
    runtime: Runtime = request.app.state.runtime
    return session_service.csrf_token_for(runtime, token) if token else ""


async def require_csrf(request: Request, principal: CurrentStaffSession, runtime: RuntimeDep) -> Principal:
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
    token = request.state.staff_session_token
    if not session_service.csrf_matches(runtime, token, presented):
        raise Forbidden(
            "表单已过期或来源不明，请刷新页面后重试",
            message_en="missing or invalid CSRF token; reload the page and try again",
        )
    return principal


CsrfProtected = Annotated[Principal, Depends(require_csrf)]


def install_login_redirect(app: FastAPI) -> None:
    """Browsers (HTML accepted) without a session go to the login page; programs get a JSON 401."""

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html:
            target = request.url.path if request.method == "GET" else ""
            if target and request.url.query:
                target += f"?{request.url.query}"
            suffix = f"?next={quote(target, safe='')}" if target else ""
            return RedirectResponse(LOGIN_PATH + suffix, status_code=303)
        return JSONResponse(error_body(exc.code, exc.message, exc.message_en), status_code=401)
