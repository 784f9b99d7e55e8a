"""An admin's work in a real browser (Debian chromium via Playwright, JavaScript off), on SQLite and on
PostgreSQL: log in, create an account, issue it an API token (shown once; it works), disable the account
(the token stops working), add a deadline rule, switch to English and back. axe-core on every admin page,
screenshots at 1280 px and 390 px in test-artifacts/staff-admin/ (git-ignored). And /docs: every request the
OpenAPI page makes stays on the site."""

from __future__ import annotations

from typing import Any

import httpx
import pyotp
import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.browser import (
    browser_server,
    check_axe,
    cli,
    fresh_totp_code,
    launch_chromium,
    require_axe,
    require_chromium,
    shoot_both,
)

pytestmark = pytest.mark.browser
PASSWORD = "admin console password 9"  # noqa: S105
ARTIFACTS = REPO_ROOT / "test-artifacts" / "staff-admin"


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_chromium()
    require_axe()
    data = tmp_path_factory.mktemp(f"staff-admin-browser-{backend}")
    with browser_server(backend, data) as (proc, env):
        cli(env, "unit", "add", "--name", "区纪委监委")
        cli(env, "staff", "add", "--name", "系统管理员甲", "--role", "admin")
        cli(env, "staff", "set-password", "系统管理员甲", "--stdin", stdin=PASSWORD + "\n")
        uri = cli(env, "staff", "enrol-totp", "系统管理员甲").strip().splitlines()[-1]
        # Chromium treats localhost as a secure origin, so the Secure __Host- cookie works over http there.
        yield proc.base_url.replace("127.0.0.1", "localhost"), pyotp.parse_uri(uri)


@pytest.fixture(scope="module")
def browser(server):  # type: ignore[no-untyped-def]
    with launch_chromium() as chromium:
        yield chromium


def review(browser: Any, base_url: str, page: Any, name: str) -> None:
    check_axe(browser, base_url, page, name)
    shoot_both(page, ARTIFACTS, name)


def test_admin_creates_an_account_issues_a_token_and_disables_it(server, browser, backend) -> None:  # type: ignore[no-untyped-def]
    base_url, totp = server
    context = browser.new_context(
        java_script_enabled=False, locale="zh-CN", viewport={"width": 1280, "height": 900}
    )
    foreign: list[str] = []
    context.on("request", lambda r: None if r.url.startswith(base_url) else foreign.append(r.url))
    page = context.new_page()
    page.goto(base_url + "/staff/registry/admin/staff")
    assert "/staff/login" in page.url
    review(browser, base_url, page, f"{backend}-login")
    page.locator("#name").fill("系统管理员甲")
    page.locator("#password").fill(PASSWORD)
    page.locator("#totp").fill(fresh_totp_code(totp))
    with page.expect_navigation():
        page.locator("#totp").press("Enter")
    assert page.url.endswith("/staff/registry/admin/staff"), page.locator("main").inner_text()
    review(browser, base_url, page, f"{backend}-staff-list")

    # create an investigator in the unit
    page.locator("#f-name").fill("核查员丙")
    page.get_by_label("核查人员").check()
    page.locator("#f-unit").select_option(label="区纪委监委")
    with page.expect_navigation():
        page.get_by_role("button", name="新建账号").click()
    assert "核查员丙" in page.locator("h1").inner_text()
    assert "已保存" in page.locator(".message").inner_text()
    review(browser, base_url, page, f"{backend}-staff-one")

    # a token, shown once, works on the API
    with page.expect_navigation():
        page.get_by_role("button", name="签发新令牌").click()
    token = page.locator("#shown-once").inner_text().strip()
    assert token.startswith("tlk_")
    review(browser, base_url, page, f"{backend}-token-shown-once")
    me = httpx.get(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == "核查员丙"

    # disable: the account shows as disabled and the token stops working
    with page.expect_navigation():
        page.get_by_role("button", name="停用此账号").click()
    assert page.locator("#staff-state").inner_text().strip() == "已停用"
    assert httpx.get(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    page.goto(base_url + "/staff/registry/admin/staff")
    assert "已停用" in page.locator("table").inner_text()

    # a deadline rule
    page.goto(base_url + "/staff/registry/admin/deadlines")
    review(browser, base_url, page, f"{backend}-deadlines")
    page.locator("#f-stage").select_option("verification")
    page.locator("#f-amount").fill("20")
    with page.expect_navigation():
        page.get_by_role("button", name="新增", exact=True).click()
    assert "20 个工作日" in page.locator("table").first.inner_text()

    # the other admin pages, then English and back
    for name in ("units", "routing", "taxonomy"):
        page.goto(f"{base_url}/staff/registry/admin/{name}")
        review(browser, base_url, page, f"{backend}-{name}")
    page.goto(base_url + "/staff/registry/admin/staff")
    with page.expect_navigation():
        page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name="Create an account").is_visible()
    review(browser, base_url, page, f"{backend}-staff-list-en")
    with page.expect_navigation():
        page.get_by_role("link", name="中文").click()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert foreign == []
    context.close()


def test_docs_page_makes_no_request_off_the_site(server, browser) -> None:  # type: ignore[no-untyped-def]
    base_url, _totp = server
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.goto(base_url + "/docs", wait_until="networkidle")
    page.get_by_text("Submit a report").first.wait_for(timeout=15000)  # Swagger UI rendered the schema
    assert any(url.endswith("/openapi.json") for url in requests), requests
    assert any(url.endswith("/docs/static/swagger-ui-bundle.js") for url in requests), requests
    off_site = [url for url in requests if not url.startswith(base_url + "/") and not url.startswith("data:")]
    assert off_site == [], off_site
    shoot_both(page, ARTIFACTS, "docs")
    context.close()


def test_admin_renames_a_unit_gives_it_an_alias_and_changes_a_deadline(server, browser, backend) -> None:  # type: ignore[no-untyped-def]
    base_url, totp = server
    context = browser.new_context(
        java_script_enabled=False, locale="zh-CN", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto(base_url + "/staff/login")
    page.locator("#name").fill("系统管理员甲")
    page.locator("#password").fill(PASSWORD)
    page.locator("#totp").fill(fresh_totp_code(totp))
    with page.expect_navigation():
        page.locator("#totp").press("Enter")

    # a unit under 区纪委监委, then its own page: rename it
    page.goto(base_url + "/staff/registry/admin/units")
    page.locator("#f-name").fill("城关派出所")
    page.locator("#f-parent").select_option(label="区纪委监委")
    with page.expect_navigation():
        page.get_by_role("button", name="新增", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("link", name="修改单位 城关派出所").click()
    review(browser, base_url, page, f"{backend}-unit-edit")
    page.locator("#f-name").fill("县公安局城关派出所")
    with page.expect_navigation():
        page.get_by_role("button", name="保存").click()
    assert page.locator("h1").inner_text() == "县公安局城关派出所"
    assert "已保存" in page.locator(".message").inner_text()

    # an alias; one that is only generic words is refused with the reason, on the same page
    page.locator("#f-alias").fill("城关所")
    with page.expect_navigation():
        page.get_by_role("button", name="新增", exact=True).click()
    assert "城关所" in page.locator("table").inner_text()
    page.locator("#f-alias").fill("派出所")
    with page.expect_navigation():
        page.get_by_role("button", name="新增", exact=True).click()
    assert "只有通用词" in page.locator(".message").inner_text()
    assert page.locator("#f-name").input_value() == "县公安局城关派出所"  # the other form as it was
    review(browser, base_url, page, f"{backend}-unit-edit-refused")
    page.goto(base_url + "/staff/registry/admin/units")
    row = page.locator("tr", has_text="县公安局城关派出所")
    assert "城关所" in row.inner_text() and "区纪委监委" in row.inner_text()
    review(browser, base_url, page, f"{backend}-units-edited")

    # a deadline rule, then its limit changed in its row
    page.goto(base_url + "/staff/registry/admin/deadlines")
    page.locator("#f-stage").select_option("inquiry")
    page.locator("#f-amount").fill("10")
    with page.expect_navigation():
        page.get_by_role("button", name="新增", exact=True).click()
    row = page.locator("tbody tr", has_text="谈话函询").first
    assert "10 个工作日" in row.inner_text()
    row.get_by_role("textbox").fill("12")
    with page.expect_navigation():
        row.get_by_role("button", name="修改期限").click()
    row = page.locator("tbody tr", has_text="谈话函询").first
    assert "12 个工作日" in row.inner_text() and "已保存" in page.locator(".message").inner_text()
    review(browser, base_url, page, f"{backend}-deadlines-edited")
    page.goto(base_url + "/staff/registry/admin/routing")
    review(browser, base_url, page, f"{backend}-routing-after")
    context.close()
