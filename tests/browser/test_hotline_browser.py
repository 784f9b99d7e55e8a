"""An operator's shift in a real browser (Debian chromium via Playwright), JavaScript off, on SQLite and on
PostgreSQL: log in with password and TOTP, record a call with the caller's number, read the grouped code; the
number is nowhere in the stored data in plaintext; the caller replaces the read-aloud code on the status page
(the old one stops working) and confirms the operator's record of the call; the caller phones again and the
operator adds to the clue with the new code; a supervisor sees the new clue and the caller's confirmation
through the API.
"""

from __future__ import annotations

import re
import secrets

import httpx
import pyotp
import pytest

from tests.helpers import files_under, find_canaries, pg_dump
from tests.helpers.browser import browser_server, cli, fresh_totp_code, launch_chromium, require_chromium

pytestmark = pytest.mark.browser

PASSWORD = "browser shift password 42"  # noqa: S105


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_chromium()
    data = tmp_path_factory.mktemp(f"hotline-browser-{backend}")
    with browser_server(backend, data, web_lookup_floor_seconds="0.05") as (proc, env):
        cli(env, "staff", "add", "--name", "hotline-op", "--role", "operator")
        cli(env, "staff", "set-password", "hotline-op", "--stdin", stdin=PASSWORD + "\n")
        uri = cli(env, "staff", "enrol-totp", "hotline-op").strip().splitlines()[-1]
        supervisor = cli(env, "staff", "add", "--name", "hotline-sup", "--role", "supervisor")
        supervisor_token = supervisor.split()[-1]
        # Chromium treats localhost as a secure origin, so the Secure __Host- cookie works over http there.
        base_url = proc.base_url.replace("127.0.0.1", "localhost")
        yield base_url, pyotp.parse_uri(uri), supervisor_token, data, env["TIPLINE_DATABASE_URL"]


@pytest.fixture(scope="module")
def browser(server):  # type: ignore[no-untyped-def]
    with launch_chromium() as chromium:
        yield chromium


def test_operator_shift_end_to_end(server, browser) -> None:  # type: ignore[no-untyped-def]
    base_url, totp, supervisor_token, data, database_url = server
    number = "137" + "".join(secrets.choice("0123456789") for _ in range(8))
    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    foreign: list[str] = []
    context.on("request", lambda r: None if r.url.startswith(base_url) else foreign.append(r.url))
    page = context.new_page()

    # Log in, keyboard only.
    page.goto(base_url + "/staff")
    assert "/staff/login" in page.url
    page.locator("input[name=name]:focus").wait_for()  # the name field has focus (autofocus)
    page.keyboard.type("hotline-op")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(fresh_totp_code(totp))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "您好，hotline-op" in page.locator("main").inner_text(), page.url
    assert "hotline-op" in page.content()
    cookies = {c["name"]: c for c in context.cookies()}
    session_cookie = cookies["__Host-tipline_staff"]
    assert session_cookie["httpOnly"] and session_cookie["secure"] and session_cookie["sameSite"] == "Strict"

    # Record a call.
    page.locator("ul.menu").get_by_role("link", name=re.compile("登记来电")).click()
    page.keyboard.type("来电反映某派出所民警吴某收了嫌疑人家属五万元，案子就撤了。")  # summary has focus
    page.get_by_label(re.compile("来电人原话")).fill("他说钱给到位，案子就能撤。")
    page.get_by_label(re.compile("通话时长")).fill("6")
    page.get_by_label(re.compile("来电号码")).fill(number)
    page.get_by_label(re.compile("同意回电")).check()
    page.get_by_label(re.compile("回电方式与时间")).fill("工作日晚上")
    page.locator("#f-accused_name").fill("吴某")
    page.locator("#f-accused_unit").fill("某某派出所")
    page.get_by_role("button", name=re.compile("登记并生成查询码")).click()
    receipt = page.locator("p.receipt")
    receipt.wait_for()
    groups = receipt.locator("span").all_inner_texts()
    assert len(groups) == 5 and all(re.fullmatch(r"\d{5}", g) for g in groups)
    code = "".join(groups)
    registry_number = re.search(r"LG-\d{4}-\d{6}", page.content()).group(0)
    page.screenshot(path=str(data / "call-done.png"))

    # The caller's number is nowhere in the stored data (the files, and on PostgreSQL a dump of the rows).
    stored = b"".join(p.read_bytes() for p in files_under(data) if p.suffix not in (".log", ".png"))
    if database_url.startswith("postgresql"):
        stored += pg_dump(database_url)
    assert find_canaries(stored, [number, code]) == []

    # The caller uses the read-aloud code on the web: it is replaced; the old one stops working.
    caller = browser.new_context(java_script_enabled=False, locale="zh-CN").new_page()
    caller.goto(base_url + "/status")
    caller.get_by_label("查询码").fill(" ".join(groups))
    caller.keyboard.press("Enter")
    caller.locator("p.code").wait_for()
    new_code = re.sub(r"\D", "", caller.locator("p.code").inner_text())
    assert len(new_code) == 25 and new_code != code
    assert new_code not in caller.url and code not in caller.url

    # The caller reads the operator's record of the call and confirms it (the code stays in form posts).
    caller.get_by_role("button", name="查看并确认我的来电记录").click()
    caller.get_by_role("heading", name="您的来电记录", level=1).wait_for()
    record = caller.locator("main").inner_text()
    assert "五万元" in record and "他说钱给到位" in record and "工作日晚上" in record
    caller.get_by_label("准确，我确认这份记录").check()
    caller.get_by_role("button", name="提交我的答复").click()
    caller.get_by_role("status").wait_for()
    assert "您的确认已随举报一并保存" in caller.locator("main").inner_text()
    assert new_code not in caller.url
    caller.screenshot(path=str(data / "caller-confirmed.png"))

    caller.goto(base_url + "/status")
    caller.get_by_label("查询码").fill(code)
    caller.keyboard.press("Enter")
    caller.wait_for_load_state()
    assert caller.locator("p.code").count() == 0  # the old code opens nothing now

    # The caller phones again with the new code: the operator adds to the clue (add-only).
    page.goto(base_url + "/staff/hotline/add")
    page.locator("input[name=receipt]:focus").wait_for()  # the code field has focus (autofocus)
    page.keyboard.type(new_code)
    page.get_by_label(re.compile("补充内容")).fill("补充：撤案后吴某还请家属吃了饭。")
    page.get_by_role("button", name=re.compile("记录补充")).click()
    assert "补充内容已记录" in page.content()

    # An operator cannot open the clue list; a supervisor sees the new clue.
    listed = httpx.get(
        base_url.replace("localhost", "127.0.0.1") + "/api/v1/clues?channel=hotline",
        headers={"Authorization": f"Bearer {supervisor_token}"},
    )
    [clue] = [c for c in listed.json()["items"] if c["registry_number"] == registry_number]
    # ... and the caller's confirmation kept with it.
    additions = httpx.get(
        base_url.replace("localhost", "127.0.0.1") + f"/api/v1/clues/{clue['id']}/additions",
        headers={"Authorization": f"Bearer {supervisor_token}"},
    ).json()
    kinds = [(a["kind"], a["content"].get("confirmed")) for a in additions]
    assert ("caller_confirmation", True) in kinds and kinds[0] == ("call_record", None)
    assert "operator_addition" in [a["kind"] for a in additions]

    # Log out; the session is gone.
    page.goto(base_url + "/staff")
    page.get_by_role("button", name=re.compile("退出登录")).click()
    page.goto(base_url + "/staff")
    assert "/staff/login" in page.url
    assert foreign == []
    context.close()
