"""Rendering staff pages: one Jinja2 environment (autoescaped), strict security headers on every page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from service.auth.permissions import Action, is_allowed
from service.auth.service import Principal
from service.platform.timeutil import LOCAL, as_utc
from service.staff_site.session import CSRF_FIELD, csrf_token

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["CSRF_FIELD"] = CSRF_FIELD
templates.env.filters["local"] = lambda moment: (
    as_utc(moment).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if moment else ""
)
templates.env.filters["localdate"] = lambda moment: (
    as_utc(moment).astimezone(LOCAL).strftime("%Y-%m-%d") if moment else ""
)


def _iso_local(text: str | None) -> str:
    """An ISO timestamp kept inside a sealed record, shown in local time ("" if absent or unreadable)."""
    try:
        return templates.env.filters["local"](datetime.fromisoformat(text)) if text else ""
    except ValueError:
        return ""


templates.env.filters["isolocal"] = _iso_local

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def nav_links(principal: Principal | None) -> list[tuple[str, str]]:
    if principal is None:
        return []
    links = [("/staff", "首页")]
    roles = principal.roles
    if is_allowed(roles, Action.register_call):
        links.append(("/staff/hotline/calls/new", "登记来电"))
        links.append(("/staff/hotline/add", "来电补充"))
    if is_allowed(roles, Action.register_letter_visit):
        links.append(("/staff/letters/new", "登记来信"))
        links.append(("/staff/visits/new", "登记来访"))
    if is_allowed(roles, Action.list_assigned_clues):
        links.append(("/staff/registry/mine", "我的线索"))
    if is_allowed(roles, Action.list_all_clues):
        links.append(("/staff/registry", "线索台账"))
    if is_allowed(roles, Action.decide_clue):
        links.append(("/staff/registry/transfer-requests", "移交申请"))
    if is_allowed(roles, Action.register_staff_source):
        links.append(("/staff/sources/new", "登记交办/自查/坦白线索"))
    if is_allowed(roles, Action.list_routing_rules):
        links.append(("/staff/registry/admin/routing", "分办规则"))
    if is_allowed(roles, Action.list_units):
        links.append(("/staff/registry/admin/units", "单位"))
    if is_allowed(roles, Action.view_taxonomy):
        links.append(("/staff/registry/admin/taxonomy", "问题分类"))
    return links


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "principal": principal,
        "nav": nav_links(principal),
        "csrf_token": csrf_token(request),
        "errors": {},
        "form": {},
    }
    values.update(context or {})
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
