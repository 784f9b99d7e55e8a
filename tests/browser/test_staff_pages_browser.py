"""Every staff page, in Chinese and in English, in a real browser (Debian chromium via Playwright, JavaScript
off), on SQLite and on PostgreSQL.

The pages are the GET routes under /staff of the app's own route table: a new page that is not listed in
``PAGES`` (or, for a download or a redirect, in ``NOT_PAGES``) fails the test. Each page is opened as a
user allowed to see it (one account holding every role, so every form a role may see is on the page),
with the data it shows: a web report with the reporter's message and photo, our answer, a progress
request, key-clue supervision, a working note and a transfer request; a hotline call with an addition; a
letter; a routing rule. A refusal (a clue that does not exist) is a page too, and is checked the same way.

On each page, in each language:
- axe-core (its default rule set: WCAG 2.0/2.1/2.2 A and AA and best practices) finds no violation of
  any impact;
- by default the page is Chinese: ``<html lang="zh-CN">`` and no English sentence of the catalog;
- after the switch it is English: ``<html lang="en">`` and nothing Chinese in the interface (text and
  the attributes a screen reader reads) except data — names, texts, registry numbers, the taxonomy
  file's category names — and the language switch, which names Chinese in Chinese.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pyotp
import pytest

from tests.helpers.browser import (
    browser_server,
    check_axe,
    cli,
    launch_chromium,
    require_axe,
    require_chromium,
    staff_login,
)
from tests.helpers.hotline import call_body
from tests.helpers.media import png_bytes
from tests.helpers.staff_pages import chinese_left, english_left, staff_get_routes, taxonomy_data

pytestmark = pytest.mark.browser
PASSWORD = "every page password 8"  # noqa: S105
EVERYONE = "全能值班员"
ALL_ROLES = "operator,investigator,supervisor,custodian,admin"
EVERY_IMPACT = ("minor", "moderate", "serious", "critical")
NO_CLUE = "01a00000-0000-7000-8000-000000000000"

# Route -> the addresses that show it (filled in from the data ``site`` makes).
PAGES: dict[str, tuple[str, ...]] = {
    "/staff/login": ("/staff/login",),
    "/staff": ("/staff",),
    "/staff/hotline/calls/new": ("/staff/hotline/calls/new",),
    "/staff/hotline/add": ("/staff/hotline/add",),
    "/staff/letters/new": ("/staff/letters/new",),
    "/staff/visits/new": ("/staff/visits/new",),
    "/staff/sources/new": (
        "/staff/sources/new?source=superior_assigned",
        "/staff/sources/new?source=self_inspection",
        "/staff/sources/new?source=voluntary_confession",
    ),
    "/staff/hotline/calls/{clue_id}/recording": ("/staff/hotline/calls/{call}/recording",),
    "/staff/letters/{clue_id}/pages": ("/staff/letters/{letter}/pages",),
    "/staff/registry": ("/staff/registry",),
    "/staff/registry/mine": ("/staff/registry/mine", "/staff/registry/mine?show=all"),
    "/staff/registry/transfer-requests": ("/staff/registry/transfer-requests",),
    "/staff/registry/brief": ("/staff/registry/brief",),
    "/staff/registry/supervision": ("/staff/registry/supervision",),
    "/staff/registry/clues/{clue_id}": ("/staff/registry/clues/{tip}", "/staff/registry/clues/{call}"),
    "/staff/registry/admin/units": ("/staff/registry/admin/units",),
    "/staff/registry/admin/units/{unit_id}": ("/staff/registry/admin/units/{unit}",),
    "/staff/registry/admin/routing": ("/staff/registry/admin/routing",),
    "/staff/registry/admin/routing/{rule_id}": ("/staff/registry/admin/routing/{rule}",),
    "/staff/registry/admin/taxonomy": ("/staff/registry/admin/taxonomy",),
    "/staff/registry/admin/staff": ("/staff/registry/admin/staff",),
    "/staff/registry/admin/staff/{staff_id}": ("/staff/registry/admin/staff/{me}",),
    "/staff/registry/admin/deadlines": ("/staff/registry/admin/deadlines",),
}
NOT_PAGES = {
    "/staff/lang": "the language switch: a redirect",
    "/staff/static/staff.css": "the stylesheet",
    "/staff/registry/files/{attachment_id}": "a clue's file, shown or downloaded as itself",
    "/staff/registry/ledger.{fmt}": "the ledger as xlsx or CSV",
    "/staff/registry/brief.xlsx": "the meeting brief as xlsx",
    "/staff/registry/dossiers/{digest}": "a kept hand-off dossier, a ZIP",
    "/staff/registry/redactions/{redaction_id}/file": "a redacted version of a file, shown as itself",
}


def test_the_language_checks_catch_a_page_in_both_languages() -> None:
    """The old bilingual button fails both checks; data and the language switch pass."""
    glossed = '<button>登记 <span lang="en">Register (Alt+S)</span></button>'
    assert chinese_left(glossed, []) == ["登记"]
    assert english_left(glossed, []) == ["Register (Alt+S)"]
    data = '<td>区纪委监委</td><a class="lang-switch" href="/staff/lang?to=zh">中文</a><p>Status</p>'
    assert chinese_left(data, ["区纪委监委"]) == []
    assert chinese_left('<nav aria-label="主菜单"></nav>', []) == ["主菜单"]  # what is read aloud counts


def test_every_staff_page_is_listed() -> None:
    routes = staff_get_routes()
    assert routes - PAGES.keys() - NOT_PAGES.keys() == set(), "a new staff page: add it to PAGES"
    assert (PAGES.keys() | NOT_PAGES.keys()) - routes == set(), "a page listed here no longer exists"


class Api:
    """The JSON API with the all-roles account's token; remembers every string it sends (data)."""

    def __init__(self, base_url: str, token: str, data: list[str]) -> None:
        self.base_url, self.headers, self.data = base_url, {"Authorization": f"Bearer {token}"}, data

    def _remember(self, value: Any) -> None:
        if isinstance(value, str):
            self.data.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                self._remember(item)

    def post(self, path: str, body: dict[str, Any], status: int = 201, method: str = "POST") -> Any:
        self._remember(body)
        response = httpx.request(method, self.base_url + path, json=body, headers=self.headers, timeout=30)
        assert response.status_code == status, response.text
        return response.json()

    def get(self, path: str) -> Any:
        response = httpx.get(self.base_url + path, headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


def reporter_writes_with_a_photo(browser: Any, base_url: str, code: str, text: str, tmp: Any) -> None:
    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    try:
        page = context.new_page()
        photo = tmp / "photo.png"
        photo.write_bytes(png_bytes())
        page.goto(base_url + "/status")
        page.locator("input[name=code]").fill(code)
        page.locator("form[action='/status'] button[type=submit]").click()
        page.locator("textarea[name=text]").fill(text)
        page.locator("input[name=files]").set_input_files(str(photo))
        page.locator("form[action='/status/reply'] button[type=submit]").click()
        page.wait_for_selector(f"text={text}")
    finally:
        context.close()


@pytest.fixture(scope="module")
def browser(backend: str):  # type: ignore[no-untyped-def]
    require_chromium()
    require_axe()
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def site(backend: str, browser, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp(f"staff-pages-{backend}")
    with browser_server(backend, data_dir, web_lookup_floor_seconds="0.05") as (proc, env):
        base_url = proc.base_url.replace("127.0.0.1", "localhost")  # Secure cookies: a secure origin
        data: list[str] = [EVERYONE, "审批领导", *taxonomy_data()]
        for unit in ("区纪委监委", "区政法委督查室", "城西派出所"):
            cli(env, "unit", "add", "--name", unit)
            data.append(unit)
        token = cli(env, "staff", "add", "--name", EVERYONE, "--role", ALL_ROLES, "--unit", "区纪委监委")
        cli(env, "staff", "set-password", EVERYONE, "--stdin", stdin=PASSWORD + "\n")
        totp = pyotp.parse_uri(cli(env, "staff", "enrol-totp", EVERYONE).strip().splitlines()[-1])
        cli(env, "staff", "add", "--name", "审批领导", "--role", "supervisor", "--unit", "区政法委督查室")
        api = Api(base_url, token.split()[-1], data)
        units = {u["name"]: u["id"] for u in api.get("/api/v1/units")}
        staff = {s["name"]: s["id"] for s in api.get("/api/v1/staff")}
        me = staff[EVERYONE]
        rule = api.post("/api/v1/routing-rules", {"handling_unit_id": units["区纪委监委"], "priority": 10})

        # A web report: the reporter writes with a photo; triaged, assigned to us, answered, supervised.
        tip = api.post(
            "/api/v1/tips",
            {
                "text": "城西派出所民警收了当事人的红包，案子一直压着不立案。",
                "accused": {"name": "王某", "unit": "城西派出所", "position": "民警", "rank": "一级警长"},
                "incident": {"time": "去年春节前后", "place": "城西派出所值班室"},
                "category_hint": "case_suppression",
            },
        )
        data.append(tip["registry_number"])
        reporter_text = "还有一名辅警在场，照片是当时的值班表。"
        data.append(reporter_text)
        reporter_writes_with_a_photo(browser, base_url, tip["receipt"], reporter_text, data_dir)
        listing = api.get("/api/v1/clues?limit=200")["items"]
        tip_id = next(c["id"] for c in listing if c["registry_number"] == tip["registry_number"])
        api.post(
            f"/api/v1/clues/{tip_id}/transitions", {"action": "triage", "reason": "分办", "route": False}
        )
        api.post(f"/api/v1/clues/{tip_id}/assign", {"assignee_id": me}, status=200)
        api.post(f"/api/v1/clues/{tip_id}/messages", {"text": "收到，我们正在核实。"})
        api.post(f"/api/v1/clues/{tip_id}/notes", {"text": "已调取值班记录。"})
        due_on = (date.today() + timedelta(days=5)).isoformat()
        api.post(f"/api/v1/clues/{tip_id}/progress-requests", {"due_on": due_on, "note": "请报告核实进展。"})
        supervision = {"key_clue": True, "leader_id": staff["审批领导"], "reason": "群众反映强烈"}
        api.post(f"/api/v1/clues/{tip_id}/supervision", supervision, status=200, method="PUT")
        api.post(
            f"/api/v1/clues/{tip_id}/transfer-requests",
            {"to_unit_id": units["区政法委督查室"], "reason": "被反映人已调至督查室管辖的单位"},
        )

        # A hotline call taken by us, with a later addition; a letter typed in by us.
        call = api.post("/api/v1/hotline/calls", call_body())
        # the call's text as registered joins the two (and a select may show it cut short)
        data += [call["registry_number"], "【来电人原话】", "【来电人原话"]
        api.post(
            "/api/v1/hotline/additions", {"receipt": call["receipt"], "text": "来电人补充：还有一名证人。"}
        )
        letter = api.post(
            "/api/v1/letters",
            {"postmark_date": date.today().isoformat(), "text": "来信反映看守所管教民警违规会见。"},
        )
        data.append(letter["registry_number"])
        ids = {
            "tip": tip_id,
            "call": call["clue_id"],
            "letter": letter["clue_id"],
            "rule": rule["id"],
            "me": me,
            "unit": units["区纪委监委"],
        }
        yield base_url, totp, ids, data


def visit(
    browser: Any, base_url: str, page: Any, path: str, lang: str, data: list[str], status: int = 200
) -> list[str]:
    """Open one page; returns what is wrong with it (axe-core and the language checks)."""
    response = page.goto(base_url + path)
    assert response is not None and response.status == status, f"{path}: {response and response.status}"
    assert "/staff/login" not in page.url or path == "/staff/login", f"{path}: sent to the login page"
    html = page.content()
    problems: list[str] = []
    try:
        check_axe(browser, base_url, page, f"{lang} {path}", impacts=EVERY_IMPACT)
    except AssertionError as exc:
        problems.append(str(exc))
    if lang == "en":
        if '<html lang="en">' not in html:
            problems.append(f"en {path}: not marked as English")
        left = chinese_left(html, data)
        if left:
            problems.append(f"en {path}: Chinese left in the interface: {left}")
    else:
        if '<html lang="zh-CN">' not in html:
            problems.append(f"zh {path}: not marked as Chinese")
        left = english_left(html, data)
        if left:
            problems.append(f"zh {path}: English in the Chinese page: {left}")
    return problems


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_staff_page_in_each_language_is_whole_and_axe_clean(browser, site, lang: str) -> None:  # type: ignore[no-untyped-def]
    base_url, totp, ids, data = site
    context = browser.new_context(
        java_script_enabled=False, locale="zh-CN", viewport={"width": 1280, "height": 900}
    )
    problems: list[str] = []
    seen = 0
    try:
        page = context.new_page()
        if lang == "en":
            page.goto(f"{base_url}/staff/lang?to=en&next=%2Fstaff%2Flogin")
        problems += visit(browser, base_url, page, "/staff/login", lang, data)
        staff_login(page, base_url, EVERYONE, PASSWORD, totp)
        for route, paths in PAGES.items():
            if route == "/staff/login":
                continue
            for path in paths:
                problems += visit(browser, base_url, page, path.format(**ids), lang, data)
                seen += 1
        # A refusal is a page too: a clue that does not exist (or that this account may not see).
        problems += visit(browser, base_url, page, f"/staff/registry/clues/{NO_CLUE}", lang, data, 404)
    finally:
        context.close()
    assert seen >= len(PAGES) - 1
    assert problems == [], "\n".join(problems)
