"""The citizen's whole journey in a real browser (Debian chromium through Playwright), once with
JavaScript and once without, on SQLite and on PostgreSQL: report (anonymous, then real-name) with an
attachment, read the receipt, open the status page with the code, see an investigator's message sent through
the staff API, download the file the investigator sent (metadata removed), reply.

Also: no request leaves the app's origin; axe-core (npm, tests/browser/package.json) finds no serious or
critical violation on any public page; pages fit a 320 px screen. Screenshots go to test-artifacts/web/
(named by backend).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.browser import (
    browser_server,
    check_axe,
    cli,
    launch_chromium,
    require_axe,
    require_chromium,
    shoot_both,
)
from tests.helpers.database import count_clues
from tests.helpers.hotline import call_body
from tests.helpers.media import jpeg_with_gps

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"


IDENTITY = {
    "web_committee_name": "测试区委政法委员会",
    "web_hotline_number": "0571-87654321",
    "web_mailbox_address": "jubao@zfw.cs-district.gov.cn",
}


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_chromium()
    require_axe()
    data = tmp_path_factory.mktemp(f"web-browser-{backend}")
    settings = {"web_pow_bits": "12", "web_lookup_floor_seconds": "0.05", **IDENTITY}
    with browser_server(backend, data, **settings) as (proc, env):
        out = cli(env, "staff", "add", "--name", "browser-sup", "--role", "supervisor")
        token = out.strip().splitlines()[-1].split()[-1]
        out = cli(env, "staff", "add", "--name", "browser-op", "--role", "operator")
        operator = out.strip().splitlines()[-1].split()[-1]
        yield proc.base_url, token, env["TIPLINE_DATABASE_URL"], operator


@pytest.fixture(scope="module")
def browser(server):  # type: ignore[no-untyped-def]
    with launch_chromium() as chromium:
        yield chromium


def review(browser, base_url: str, page, name: str) -> None:
    shoot_both(page, ARTIFACTS, name)
    check_axe(browser, base_url, page, name)


@pytest.mark.parametrize(("javascript", "identity"), [(True, "anonymous"), (False, "real_name")])
def test_citizen_journey(server, browser, backend, tmp_path, javascript, identity):
    base_url, token, database_url, _operator = server
    mode = f"{backend}-{'js' if javascript else 'nojs'}"
    foreign: list[str] = []
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 390, "height": 844})

    def guard(route):
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    try:
        page.goto(base_url + "/")
        assert page.get_by_role("link", name="我要举报").is_visible()
        assert "测试区委政法委员会" in page.content() and "举报电话：0571-87654321" in page.content()
        review(browser, base_url, page, f"{mode}-1-landing")

        page.get_by_role("link", name="我要举报").first.click()
        page.wait_for_url(base_url + "/report")
        assert "请不要在这里写您自己的姓名" in page.content()
        review(browser, base_url, page, f"{mode}-2-report-form")

        # Submitting with nothing filled in: errors next to the fields and in a summary.
        page.get_by_role("button", name="提交举报").click()
        page.wait_for_selector("#error-summary")
        assert page.locator("#e-text").is_visible()
        review(browser, base_url, page, f"{mode}-3-report-errors")

        page.get_by_label("发生了什么").fill("民警收钱后把案子压着不办，报警也不给回执。")
        page.get_by_label("单位").fill("某某区公安分局")
        page.get_by_label("问题类别").select_option("case_suppression")
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(jpeg_with_gps())
        page.get_by_label("照片、文件或录音").set_input_files(str(photo))
        if identity == "real_name":
            page.get_by_label("实名举报").check()
            assert page.get_by_label("您的姓名（必填）").is_visible()
            page.get_by_label("您的姓名（必填）").fill("李四")
            page.get_by_label("电话", exact=True).fill("13800000000")
        else:
            assert not page.get_by_label("您的姓名（必填）").is_visible()
        before = count_clues(database_url)
        # A double press: with JavaScript the button is disabled at the first; without, the browser sends
        # the form twice and the idempotency key files it once.
        page.get_by_role("button", name="提交举报").dblclick()
        page.wait_for_selector("p.code", timeout=30_000)
        assert page.url == base_url + "/receipt"
        code = re.sub(r"\D", "", page.locator("p.code").inner_text())
        assert len(code) == 25
        assert "已收到文件 1 个" in page.content() and "已受理" not in page.content()
        if identity == "real_name":
            assert "通过您留下的电话或电子邮箱告知是否受理" in page.content(), page.inner_text("main")
        assert page.get_by_role("button", name="复制查询码").is_visible() == javascript
        review(browser, base_url, page, f"{mode}-4-receipt")
        assert count_clues(database_url) == before + 1

        if javascript:
            page.get_by_role("button", name="复制查询码").click()
            page.wait_for_selector("text=已复制。")

        # Reloading the receipt files nothing and never shows the code again.
        page.reload()
        page.wait_for_selector("text=查询码已经显示过")
        assert code not in page.content()
        review(browser, base_url, page, f"{mode}-5-receipt-reloaded")
        assert count_clues(database_url) == before + 1

        # An investigator writes through the staff API.
        clue_id = _latest_clue(base_url, token)
        sent = httpx.post(
            f"{base_url}/api/v1/clues/{clue_id}/messages",
            json={"text": "请问当时有没有其他人在场？"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 201, sent.text
        sent_file = httpx.post(
            f"{base_url}/api/v1/clues/{clue_id}/messages/file",
            content=jpeg_with_gps(make="StaffCamera"),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent_file.status_code == 201, sent_file.text

        page.goto(base_url + "/status")
        review(browser, base_url, page, f"{mode}-6-status-lookup")
        page.get_by_label("查询码").fill(" ".join(code[i : i + 5] for i in range(0, 25, 5)))
        page.get_by_role("button", name="查询").click()
        page.wait_for_selector("text=请问当时有没有其他人在场？")
        assert "code" not in page.url and code not in page.url
        assert "已收到，正在登记分办" in page.content() and "提交日期" in page.content()
        review(browser, base_url, page, f"{mode}-7-status")

        # The investigators' file: a plain form button downloads it, metadata removed.
        with page.expect_download() as fetched:
            page.get_by_role("button", name=re.compile("下载文件 1")).click()
        downloaded = Path(fetched.value.path()).read_bytes()
        assert downloaded[:2] == b"\xff\xd8" and b"StaffCamera" not in downloaded

        page.get_by_label("您的消息").fill("有，还有一名辅警。")
        note = tmp_path / "note.txt"
        note.write_text("补充材料", encoding="utf-8")
        page.get_by_label("附件（可不传）").set_input_files(str(note))
        page.get_by_role("button", name="发送", exact=True).click()
        page.wait_for_selector("text=消息已发送。")
        assert "有，还有一名辅警。" in page.content()
        review(browser, base_url, page, f"{mode}-8-replied")

        page.goto(base_url + "/poster")
        assert page.locator("svg").count() == 1 and "测试区委政法委员会" in page.content()
        review(browser, base_url, page, f"{mode}-9-poster")

        # 320 px: nothing wider than the screen.
        page.set_viewport_size({"width": 320, "height": 640})
        for path in ("/", "/report", "/status", "/poster"):
            page.goto(base_url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 320, (path, width)
    finally:
        context.close()
    assert foreign == [], foreign


def test_resending_the_same_form_says_already_received(server, browser, backend):
    """The same form sent again (the browser's resubmit, a second tab): one clue, "already received"."""
    base_url, _token, database_url, _operator = server
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(base_url + "/report")
        page.get_by_label("发生了什么").fill("法官收受当事人财物后枉法裁判。")
        key = page.locator("input[name=submission_key]").get_attribute("value")
        before = count_clues(database_url)
        page.get_by_role("button", name="提交举报").click()
        page.wait_for_selector("p.code", timeout=30_000)
        page.get_by_label("我已抄下查询码").check()
        page.get_by_role("button", name="完成，离开此页").click()
        page.wait_for_url(lambda url: url.split("?")[0] == base_url + "/")  # the home page

        page.goto(base_url + "/report")
        page.get_by_label("发生了什么").fill("法官收受当事人财物后枉法裁判。")
        page.locator("input[name=submission_key]").evaluate("(input, key) => { input.value = key; }", key)
        page.get_by_role("button", name="提交举报").click()
        page.wait_for_selector("text=这份举报已经收到，没有重复提交。", timeout=30_000)
        review(browser, base_url, page, f"{backend}-js-10-already-received")
        assert count_clues(database_url) == before + 1
    finally:
        context.close()


def test_leaving_the_receipt_needs_the_code_written_down(server, browser, backend):
    """Without JavaScript the "我已抄下查询码" box must be ticked before the button leaves the page."""
    base_url, _token, _database_url, _operator = server
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(base_url + "/report")
        page.get_by_label("发生了什么").fill("派出所民警对报案不予受理。")
        page.get_by_role("button", name="提交举报").click()
        page.wait_for_selector("p.code", timeout=30_000)
        page.get_by_role("button", name="完成，离开此页").click()
        page.wait_for_timeout(300)
        assert page.url == base_url + "/receipt"  # the browser held the form: the box is not ticked
        page.get_by_label("我已抄下查询码").check()
        page.get_by_role("button", name="完成，离开此页").click()
        page.wait_for_url(lambda url: url.split("?")[0] == base_url + "/")  # the home page
    finally:
        context.close()


def test_call_record_and_refusal_pages(server, browser, backend):
    """The pages not on the main journey: a hotline caller's status page with the new code, the record of
    the call, and a refusal (an expired form): reviewed and checked with axe-core like the others."""
    base_url, _token, _database_url, operator = server
    made = httpx.post(
        f"{base_url}/api/v1/hotline/calls",
        json=call_body(),
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert made.status_code == 201, made.text
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(base_url + "/status")
        page.get_by_label("查询码").fill(made.json()["receipt"])
        page.get_by_role("button", name="查询").click()
        page.wait_for_selector("text=您的新查询码")
        review(browser, base_url, page, f"{backend}-11-status-new-code")
        page.get_by_role("button", name="查看并确认我的来电记录").click()
        page.get_by_role("heading", name="您的来电记录", level=1).wait_for()
        assert page.get_by_text("您的新查询码").is_visible()  # still there until confirmed
        review(browser, base_url, page, f"{backend}-12-call-record")
        page.get_by_role("button", name="我已抄下新的查询码").click()
        page.get_by_role("heading", name="举报办理进度").wait_for()
        assert page.get_by_text("您的新查询码").count() == 0

        page.goto(base_url + "/report")
        context.clear_cookies()  # the form's CSRF cookie is gone, as after a browser restart
        page.get_by_label("发生了什么").fill("民警违规办案。")
        page.get_by_role("button", name="提交举报").click()
        page.wait_for_selector("text=内容没有保存")
        review(browser, base_url, page, f"{backend}-13-refused")
    finally:
        context.close()


def _latest_clue(base_url: str, token: str) -> str:
    listing = httpx.get(
        f"{base_url}/api/v1/clues", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
    )
    assert listing.status_code == 200, listing.text
    return listing.json()["items"][0]["id"]
