"""Rendering staff pages: one Jinja2 environment (autoescaped), strict security headers on every page.

Language: Simplified Chinese, with an English switch (``/staff/lang?to=en``, remembered in a cookie that
says nothing but the language). Templates write Chinese and wrap it in ``_()``; the fixed words Python hands
to a template (menu labels, status, channel and step names: the lists in ``locale/make_catalogs.py``) are
shown with the ``tr`` filter, which translates a known word and leaves data as it is (and, unlike ``_()``,
escapes it). The English is in the gettext catalog ``locale/en/LC_MESSAGES/messages.po`` (msgids are the
Chinese text; run ``python service/staff_site/locale/make_catalogs.py`` after changing a template or a
list). Messages built in Python are (Chinese, English) pairs, shown with ``pick(pair)``. Nothing is shown
in both languages at once."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from babel.support import NullTranslations, Translations
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from service.auth.permissions import Action, is_allowed
from service.auth.service import Principal
from service.http.errors import domain_error_response
from service.platform.errors import DomainError
from service.platform.timeutil import LOCAL, as_utc
from service.staff_site.session import CSRF_FIELD, csrf_token

HERE = Path(__file__).resolve().parent
LOCALE_DIR = HERE / "locale"
DEFAULT_LANG = "zh"
LANG_COOKIE = "tipline_staff_lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}


@cache
def translations(lang: str) -> NullTranslations:
    if lang == DEFAULT_LANG:
        return NullTranslations()  # the templates are written in Chinese
    return Translations.load(str(LOCALE_DIR), [lang], domain="messages")


def lang_of(request: Request) -> str:
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else DEFAULT_LANG


def translate(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translate(context.get("lang", DEFAULT_LANG), message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(context.get("lang", DEFAULT_LANG)).ngettext(singular, plural, n)


@pass_context
def _pick(context: Context, pair: tuple[str, str] | list[str] | None) -> str:
    """A (Chinese, English) pair in the page's language."""
    if not pair:
        return ""
    return pair[1] if context.get("lang") == "en" and len(pair) > 1 and pair[1] else pair[0]


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
templates.env.globals["pick"] = _pick
templates.env.filters["tr"] = pass_context(lambda context, word: _gettext(context, word) if word else "")
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
    if is_allowed(roles, Action.list_staff):
        links.append(("/staff/registry/admin/staff", "工作人员账号"))
    return links


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = lang_of(request)
    # Back to this page after switching; a page answering a POST has no address to return to.
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        here = "/staff"
    values: dict[str, Any] = {
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "comma": ", " if lang == "en" else "、",  # between the items of a list
        "switch_lang_url": f"/staff/lang?to={'zh' if lang == 'en' else 'en'}&next={quote(here, safe='')}",
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


def install_error_pages(app: FastAPI) -> None:
    """A staff page refused in a browser (no right to it, a clue it may not see, an expired form) says why on
    a page in its language, with the way home; programs, and every other path, get the JSON error."""

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> Response:
        if request.url.path.startswith("/staff") and "text/html" in request.headers.get("accept", ""):
            return render(
                request,
                "message.html",
                {"message": (exc.message, exc.message_en)},
                status_code=exc.status_code,
            )
        return domain_error_response(exc)
