"""Staff login, logout and the home page. Other staff pages hang off ``/staff`` and reuse
``CurrentStaffSession`` / ``CsrfProtected`` from ``service.staff_site.session``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.auth import sessions as session_service
from service.http.deps import RuntimeDep, SessionDep
from service.platform.runtime import Runtime
from service.registry import desk
from service.staff_site.pages import HERE, LANG_COOKIE, render
from service.staff_site.session import (
    CsrfProtected,
    CurrentStaffSession,
    clear_session_cookie,
    prelogin_cookie_name,
    set_session_cookie,
)

router = APIRouter(prefix="/staff", include_in_schema=False)

LOGIN_FAILED = ("用户名、密码或动态验证码不正确。", "Wrong name, password or one-time code.")


def _prelogin_csrf(runtime: Runtime, nonce: str) -> str:
    return hmac.new(runtime.lookup_key("staff-login-csrf"), nonce.encode(), hashlib.sha256).hexdigest()


def _safe_next(target: str | None) -> str:
    """Only our own staff pages: never another host (no open redirect)."""
    if target and target.startswith("/staff") and not target.startswith("//") and "\\" not in target:
        return target
    return "/staff"


def _login_page(
    request: Request, runtime: Runtime, *, next_url: str, message: tuple[str, str] | None, status: int
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"login_csrf": _prelogin_csrf(runtime, nonce), "next_url": next_url, "message": message},
        status_code=status,
    )
    settings = runtime.settings
    response.set_cookie(
        prelogin_cookie_name(settings),
        nonce,
        max_age=3600,
        path="/",
        secure=settings.staff_cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
async def login_form(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    return _login_page(request, runtime, next_url=_safe_next(next), message=None, status=200)


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    totp: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/staff",
) -> Response:
    next_url = _safe_next(next)
    nonce = request.cookies.get(prelogin_cookie_name(runtime.settings), "")
    if not nonce or not hmac.compare_digest(_prelogin_csrf(runtime, nonce), csrf_token):
        message = ("登录页面已过期，请重新输入。", "The login page expired; please enter your details again.")
        return _login_page(request, runtime, next_url=next_url, message=message, status=403)
    if not name.strip() or not password or not totp.strip():
        message = ("请填写用户名、密码和动态验证码。", "Enter your name, password and one-time code.")
        return _login_page(request, runtime, next_url=next_url, message=message, status=422)
    result = await session_service.attempt_login(
        session, runtime=runtime, name=name, password=password, totp_code=totp
    )
    if not result.ok:
        if result.locked:
            minutes = max(1, (result.retry_after + 59) // 60)
            message = (
                f"尝试次数过多，请 {minutes} 分钟后再试。",
                f"Too many attempts; try again in {minutes} minute(s).",
            )
            response = _login_page(request, runtime, next_url=next_url, message=message, status=429)
            response.headers["Retry-After"] = str(result.retry_after)
            return response
        return _login_page(request, runtime, next_url=next_url, message=LOGIN_FAILED, status=401)
    assert result.token is not None
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, runtime.settings, result.token)
    response.delete_cookie(
        prelogin_cookie_name(runtime.settings), path="/", secure=runtime.settings.staff_cookie_secure
    )
    return response


@router.post("/logout")
async def logout(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await session_service.logout(session, row=request.state.staff_session_row)
    response = RedirectResponse("/staff/login", status_code=303)
    clear_session_cookie(response, runtime.settings)
    return response


# The home page's figures (service.registry.desk.desk_counts), each linking to the list it counts.
FIGURES = (
    ("new", "新登记待分办", "/staff/registry?status=registered"),
    ("unassigned", "在办未交办", "/staff/registry?assign=none"),
    ("near_due", f"{desk.NEAR_DUE_DAYS}日内到期", "/staff/registry?due=near"),
    ("overdue", "已超期", "/staff/registry?due=overdue"),
    ("awaiting_approval", "移交申请待审批", "/staff/registry/transfer-requests"),
    ("contact_overdue", "回访、异议答复超期", "/staff/registry/supervision"),
    ("mine", "我的在办线索", "/staff/registry/mine"),
    ("mine_near_due", f"我的线索 {desk.NEAR_DUE_DAYS}日内到期", "/staff/registry/mine?due=near"),
    ("mine_overdue", "我的线索 已超期", "/staff/registry/mine?due=overdue"),
)
ALERTING = {"overdue", "mine_overdue", "near_due", "mine_near_due", "contact_overdue"}


@router.get("")
async def home(request: Request, principal: CurrentStaffSession, session: SessionDep) -> Response:
    """What needs doing, per role: the counts that matter, each a link to its list."""
    counts = await desk.desk_counts(session, principal=principal)
    figures = [
        {"key": key, "label": label, "href": href, "count": counts[key], "alert": key in ALERTING}
        for key, label, href in FIGURES
        if key in counts
    ]
    return render(request, "home.html", {"figures": figures}, principal=principal)


@router.get("/lang")
async def switch_language(runtime: RuntimeDep, to: str = "zh", next: str | None = None) -> Response:
    """The language switch: remembered in a cookie that holds only "en" or "zh", then back to the page."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        "en" if to == "en" else "zh",
        max_age=365 * 86400,
        path="/staff",
        secure=runtime.settings.staff_cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/static/staff.css")
async def stylesheet() -> Response:
    return FileResponse(
        HERE / "static" / "staff.css", media_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )
