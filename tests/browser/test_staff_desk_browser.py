"""The staff desk in a real browser (Debian chromium via Playwright, JavaScript off), on SQLite and on
PostgreSQL.

- A supervisor starts from the home page's counts, triages and assigns a new clue, and exports the ledger
  (xlsx and CSV) and the meeting brief from the console with the session; the files open with openpyxl with
  the expected title and headers. Ledger cells with registry numbers and statuses stay on one line at
  1280 px.
- A supervisor records a recusal with a reason on a clue's page (a reason of blanks is refused with the
  choice kept); the page lists it.
- A reporter writes a message with a photo on the status page; the investigator opens the assigned clue
  from 我的线索, reads everything the reporter gave, the message and the cleaned photo, answers; the reporter
  sees the answer on the status page.

axe-core finds no serious or critical violation on any staff page visited; each page is photographed at
1280 px and 390 px into test-artifacts/staff/ (git-ignored). No request leaves the site.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx
import pyotp
import pytest
from openpyxl import load_workbook

from tests.helpers import REPO_ROOT
from tests.helpers.browser import (
    browser_server,
    check_axe,
    cli,
    launch_chromium,
    require_axe,
    require_chromium,
    shoot_both,
    staff_login,
)
from tests.helpers.media import png_bytes

pytestmark = pytest.mark.browser
PASSWORD = "staff desk password 8"  # noqa: S105
ARTIFACTS = REPO_ROOT / "test-artifacts" / "staff"


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_chromium()
    require_axe()
    data = tmp_path_factory.mktemp(f"staff-desk-{backend}")
    with browser_server(backend, data, web_lookup_floor_seconds="0.05") as (proc, env):
        cli(env, "unit", "add", "--name", "区纪委监委")
        cli(env, "unit", "add", "--name", "区政法委督查室")
        people = {}
        for name, role, unit in (
            ("值班主任", "supervisor", "区政法委督查室"),
            ("核查员乙", "investigator", "区纪委监委"),
            ("核查员丙", "investigator", "区政法委督查室"),
        ):
            token = cli(env, "staff", "add", "--name", name, "--role", role, "--unit", unit).split()[-1]
            cli(env, "staff", "set-password", name, "--stdin", stdin=PASSWORD + "\n")
            uri = cli(env, "staff", "enrol-totp", name).strip().splitlines()[-1]
            people[name] = (token, pyotp.parse_uri(uri))
        # Chromium treats localhost as a secure origin, so the Secure __Host- cookie works over http there.
        yield proc.base_url.replace("127.0.0.1", "localhost"), people, backend


@pytest.fixture(scope="module")
def browser(server):  # type: ignore[no-untyped-def]
    with launch_chromium() as chromium:
        yield chromium


def new_context(browser, base_url: str, foreign: list[str]):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        java_script_enabled=False,
        locale="zh-CN",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )

    def guard(route):  # type: ignore[no-untyped-def]
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return context


def review(browser, base_url: str, page, backend: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("load")
    check_axe(browser, base_url, page, name)
    shoot_both(page, ARTIFACTS, f"{backend}-{name}")


def submit_tip(base_url: str, text: str, **extra: object) -> dict[str, str]:
    response = httpx.post(f"{base_url}/api/v1/tips", json={"text": text, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def clue_id_of(base_url: str, token: str, number: str) -> str:
    listing = httpx.get(
        f"{base_url}/api/v1/clues", params={"limit": 200}, headers={"Authorization": f"Bearer {token}"}
    )
    return next(c["id"] for c in listing.json()["items"] if c["registry_number"] == number)


def one_line(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    """Every matching cell's content stands on one line (no registry number or status broken character by
    character). Counted from the content's line boxes, not the cell's height: a row is as tall as its
    tallest cell, and another column may wrap."""
    page.wait_for_load_state("load")  # a click returns once the page commits: wait for the stylesheet
    lines = page.eval_on_selector_all(
        selector,
        """cells => cells.map(c => {
            const range = document.createRange();
            range.selectNodeContents(c);
            const half = (parseFloat(getComputedStyle(c).lineHeight) || 20) / 2;
            const tops = [...range.getClientRects()].map(r => r.top).sort((a, b) => a - b);
            let count = tops.length ? 1 : 0;
            for (let i = 1; i < tops.length; i++) if (tops[i] - tops[i - 1] > half) count++;
            return count;
        })""",
    )
    assert lines, selector
    assert all(n <= 1 for n in lines), (selector, lines)  # an empty cell has no line


def test_supervisor_triages_assigns_and_exports(server, browser) -> None:  # type: ignore[no-untyped-def]
    base_url, people, backend = server
    number = submit_tip(
        base_url,
        "区法院执行局法官收了被执行人的钱，案子一直拖着不执行。",
        accused={"name": "钱某", "unit": "区人民法院", "position": "法官"},
    )["registry_number"]
    foreign: list[str] = []
    context = new_context(browser, base_url, foreign)
    page = context.new_page()
    try:
        staff_login(page, base_url, "值班主任", PASSWORD, people["值班主任"][1])
        assert page.locator("#figure-new").is_visible()
        review(browser, base_url, page, backend, "supervisor-1-home")

        page.locator("#figure-new a").click()
        assert "status=registered" in page.url
        assert re.search(r"共 \d+ 条", page.locator("#result-count").inner_text())
        assert number in page.locator("table.ledger").inner_text()
        one_line(page, "table.ledger td.num")
        one_line(page, "table.ledger td.nowrap")
        review(browser, base_url, page, backend, "supervisor-2-ledger")

        page.get_by_role("link", name=number).click()
        review(browser, base_url, page, backend, "supervisor-3-clue")
        # Only the steps open from 已登记, one form each; the assignee list preselects nobody.
        steps = page.locator("form.step h3").all_inner_texts()
        assert steps == ["分办", "转出（不属于受理范围）"], steps
        assert page.locator("#f-assignee").input_value() == ""
        page.locator("#step-triage-reason").fill("属本委受理范围")
        page.locator("#step-triage").get_by_role("button", name="分办").click()
        assert page.locator("#clue-status").inner_text() == "已分办"
        assert page.locator("#clue-unit").inner_text() == "未指定承办单位"  # agrees with 已分办
        page.get_by_label("承办人 *").select_option(label="核查员乙")
        page.locator("#assign").get_by_role("button", name="交办").click()
        assert "已保存" in page.locator("main").inner_text()
        assert page.locator("#clue-handler").inner_text() == "核查员乙"
        assert page.locator("#clue-unit").inner_text() == "区纪委监委"
        groups = page.locator("#f-assignee optgroup").evaluate_all("gs => gs.map(g => g.label)")
        assert groups[0] == "承办单位：区纪委监委", groups
        history = page.locator("ol.history").inner_text()
        assert "分办" in history and "属本委受理范围" in history

        # Export the ledger from the console with the session; the files open with the expected headers.
        page.goto(base_url + "/staff/registry?status=triaged")
        assert number in page.locator("table.ledger").inner_text()
        with page.expect_download() as info:
            page.locator("#export-xlsx").click()
        download = info.value
        assert re.fullmatch(r"线索台账_\d{4}-\d{2}-\d{2}\.xlsx", download.suggested_filename)
        sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes())).active
        assert "状态：已分办" in sheet["A1"].value and "导出时间" in sheet["A1"].value
        headers = [c.value for c in sheet[2]]
        assert headers[:4] == ["编号", "来源", "渠道", "收到时间"] and {
            "状态",
            "办理结果",
            "问题类别",
        } <= set(headers)
        assert sheet.freeze_panes == "A3"
        found = next(r for r in sheet.iter_rows(min_row=3, values_only=True) if r[0] == number)
        row = dict(zip(headers, found, strict=False))
        assert row["状态"] == "已分办" and row["承办人"] == "核查员乙" and row["承办单位"] == "区纪委监委"
        with page.expect_download() as info:
            page.locator("#export-csv").click()
        rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
        assert rows[0][0] == "编号" and any(r[0] == number for r in rows)

        page.goto(base_url + "/staff/registry/brief")
        review(browser, base_url, page, backend, "supervisor-4-brief")
        with page.expect_download() as info:
            page.locator("#export-brief").click()
        book = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()))
        assert book.sheetnames[0] == "新收线索" and [c.value for c in book["新收线索"][2]][0] == "编号"

        for path, name in (
            ("/staff/registry/transfer-requests", "supervisor-5-transfer-requests"),
            ("/staff/registry/supervision", "supervisor-6-supervision"),
            ("/staff/registry?due=overdue", "supervisor-7-ledger-overdue"),
        ):
            page.goto(base_url + path)
            review(browser, base_url, page, backend, name)
    finally:
        context.close()
    assert foreign == [], foreign


def test_supervisor_records_a_recusal_on_the_clue_page(server, browser) -> None:  # type: ignore[no-untyped-def]
    base_url, people, backend = server
    number = submit_tip(
        base_url,
        "区住建局工程科科长在验收时收受好处，放行了不合格的工程。",
        accused={"name": "孙某", "unit": "区住建局", "position": "科长"},
    )["registry_number"]
    clue_id = clue_id_of(base_url, people["值班主任"][0], number)
    foreign: list[str] = []
    context = new_context(browser, base_url, foreign)
    page = context.new_page()
    try:
        staff_login(page, base_url, "值班主任", PASSWORD, people["值班主任"][1])
        page.goto(f"{base_url}/staff/registry/clues/{clue_id}#recusals")
        assert "尚无回避记录。" in page.locator("#recusals + ul").inner_text()
        # A reason of blanks passes the browser's check but not the server's: the message, the choice kept.
        page.get_by_label("回避人员 *").select_option(label="核查员丙")
        page.get_by_label("回避理由 *").fill("  ")
        page.get_by_role("button", name="记录回避").click()
        assert "请填写回避理由" in page.locator("main").inner_text()
        assert page.get_by_label("回避人员 *").locator("option:checked").inner_text() == "核查员丙"
        page.get_by_label("回避理由 *").fill("与被反映人系同学关系")
        page.get_by_role("button", name="记录回避").click()
        assert "已保存" in page.locator("main").inner_text()
        listed = page.locator("#recusals + ul").inner_text()
        assert "核查员丙" in listed and "值班主任" in listed and "与被反映人系同学关系" in listed
        review(browser, base_url, page, backend, "supervisor-8-recusal")
    finally:
        context.close()
    assert foreign == [], foreign


def test_investigator_reads_and_answers_the_reporter(server, browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base_url, people, backend = server
    receipt = submit_tip(
        base_url,
        "派出所民警收了对方的钱，把我报的案子压着不立案。",
        accused={
            "name": "孙某",
            "unit": "城西派出所",
            "position": "民警",
            "rank": "一级警长",
            "region": "城西区",
        },
        incident={"time": "去年春节前后", "place": "城西派出所值班室"},
        category_hint="case_suppression",
    )
    code, number = receipt["receipt"], receipt["registry_number"]
    foreign: list[str] = []

    # The reporter writes with a photo on the status page.
    citizen = new_context(browser, base_url, foreign)
    reporter = citizen.new_page()
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes())
    reporter.goto(base_url + "/status")
    reporter.locator("input[name=code]").fill(code)
    reporter.locator("form[action='/status'] button[type=submit]").click()
    reporter.locator("textarea[name=text]").fill("还有一名辅警在场，照片是当时的值班表。")
    reporter.locator("input[name=files]").set_input_files(str(photo))
    reporter.locator("form[action='/status/reply'] button[type=submit]").click()
    reporter.wait_for_selector("text=还有一名辅警在场")

    # A supervisor triages and assigns it (through the API: the browser journey above covers the pages).
    token = people["值班主任"][0]
    api = {"Authorization": f"Bearer {token}"}
    clue_id = clue_id_of(base_url, token, number)
    response = httpx.post(
        f"{base_url}/api/v1/clues/{clue_id}/transitions",
        headers=api,
        json={"action": "triage", "reason": "分办", "route": False},
    )
    assert response.status_code == 201, response.text
    staff = httpx.get(f"{base_url}/api/v1/staff", headers=api).json()
    investigator_id = next(s["id"] for s in staff if s["name"] == "核查员乙")
    response = httpx.post(
        f"{base_url}/api/v1/clues/{clue_id}/assign", headers=api, json={"assignee_id": investigator_id}
    )
    assert response.status_code == 200, response.text

    context = new_context(browser, base_url, foreign)
    page = context.new_page()
    try:
        staff_login(page, base_url, "核查员乙", PASSWORD, people["核查员乙"][1])
        assert page.locator("#figure-mine").is_visible()
        review(browser, base_url, page, backend, "investigator-1-home")
        page.locator("#figure-mine a").click()
        assert number in page.locator("table.ledger").inner_text()
        one_line(page, "table.ledger td.num")
        review(browser, base_url, page, backend, "investigator-2-mine")

        page.get_by_role("link", name=number).click()
        review(browser, base_url, page, backend, "investigator-3-clue")
        assert page.locator("#incident-time").inner_text() == "去年春节前后"
        assert page.locator("#incident-place").inner_text() == "城西派出所值班室"
        assert page.locator("#accused-rank").inner_text() == "一级警长"
        assert page.locator("#accused-region").inner_text() == "城西区"
        assert page.locator("#category-hint").inner_text() not in ("", "未选择")
        assert "还有一名辅警在场" in page.locator("#thread").inner_text()
        # Steps open to the investigator only; no supervisor forms.
        assert page.locator("form.step h3").all_inner_texts() == ["受理核查"]
        assert page.locator("#assign").count() == 0 and page.locator("#supervision").count() == 0

        # The photo: the cleaned copy, shown and downloaded.
        files = page.locator("#file-table tbody tr")
        assert files.count() == 1 and "举报人第 1 条消息" in files.first.inner_text()
        view = page.locator("#file-table").get_by_role("link", name="查看").get_attribute("href")
        shown = context.request.get(base_url + view)
        assert shown.status == 200 and shown.headers["content-type"] == "image/png"
        assert shown.body().startswith(b"\x89PNG")
        with page.expect_download() as info:
            page.locator("#file-table").get_by_role("link", name="下载").click()
        assert Path(info.value.path()).read_bytes().startswith(b"\x89PNG")

        # Answer the reporter.
        page.locator("#f-message").fill("已收到，请问辅警的姓名或警号是否记得？")
        page.get_by_role("button", name="发送给举报人").click()
        assert "已保存" in page.locator("main").inner_text()
        assert "请问辅警的姓名或警号" in page.locator("#thread").inner_text()
        review(browser, base_url, page, backend, "investigator-4-answered")
    finally:
        context.close()

    # The reporter sees the answer on the status page.
    try:
        reporter.goto(base_url + "/status")
        reporter.locator("input[name=code]").fill(code)
        reporter.locator("form[action='/status'] button[type=submit]").click()
        reporter.wait_for_selector("text=请问辅警的姓名或警号是否记得？")
        assert "核查员乙" not in reporter.content()  # the reporter never learns who wrote
    finally:
        citizen.close()

    other = new_context(browser, base_url, foreign)
    try:
        page = other.new_page()
        staff_login(page, base_url, "核查员丙", PASSWORD, people["核查员丙"][1])
        response = page.goto(f"{base_url}/staff/registry/clues/{clue_id}")
        assert response.status == 404
        assert number not in page.content()
    finally:
        other.close()
    assert foreign == [], foreign
