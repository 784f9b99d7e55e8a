"""Reporter communication in a real browser (Debian chromium via Playwright, JavaScript off), on SQLite and on
PostgreSQL: on a concluded real-name clue a supervisor sends the reporter a photo from the clue page, records
a 回访, records an objection made by letter and rejects it with a reason; the reporter, on the status page
with the receipt code, downloads the photo (metadata removed) and reads the objection's handling."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import httpx
import pyotp
import pytest

from service.platform.timeutil import LOCAL
from tests.helpers.browser import browser_server, cli, fresh_totp_code, launch_chromium, require_chromium
from tests.helpers.media import jpeg_with_gps

pytestmark = pytest.mark.browser
PASSWORD = "reporter contact password 3"  # noqa: S105


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_chromium()
    data = tmp_path_factory.mktemp(f"contact-browser-{backend}")
    with browser_server(backend, data, web_pow_bits="12", web_lookup_floor_seconds="0.05") as (proc, env):
        token = cli(env, "staff", "add", "--name", "回访主任", "--role", "supervisor").split()[-1]
        cli(env, "staff", "set-password", "回访主任", "--stdin", stdin=PASSWORD + "\n")
        uri = cli(env, "staff", "enrol-totp", "回访主任").strip().splitlines()[-1]
        approver = cli(env, "staff", "add", "--name", "审批领导", "--role", "supervisor").split()[-1]
        # Chromium treats localhost as a secure origin, so the Secure __Host- cookie works over http there.
        yield proc.base_url.replace("127.0.0.1", "localhost"), pyotp.parse_uri(uri), token, approver


@pytest.fixture(scope="module")
def browser(server):  # type: ignore[no-untyped-def]
    with launch_chromium() as chromium:
        yield chromium


def _concluded_real_name_clue(base_url: str, token: str, approver: str) -> tuple[str, str]:
    tip = httpx.post(
        f"{base_url}/api/v1/tips",
        json={
            "text": "派出所民警收了红包，案子压着不立。",
            "anonymous": False,
            "submitter": {"name": "李四", "phone": "13800138000"},
        },
    )
    assert tip.status_code == 201, tip.text
    api = {"Authorization": f"Bearer {token}"}
    approver_id = httpx.get(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {approver}"}).json()[
        "id"
    ]
    clues = httpx.get(f"{base_url}/api/v1/clues", headers=api).json()["items"]
    clue_id = next(c["id"] for c in clues if c["registry_number"] == tip.json()["registry_number"])
    today = datetime.now(LOCAL).date().isoformat()
    approval = {"approver_id": approver_id, "decision_on": today}
    for body in (
        {"action": "triage", "route": False},
        {"action": "accept"},
        {"action": "dispose", "method": "verification", **approval},
        {
            "action": "conclude",
            "finding": "unfounded",
            "summary": "查无实据。",
            "feedback": "已告知。",
            **approval,
        },
    ):
        done = httpx.post(
            f"{base_url}/api/v1/clues/{clue_id}/transitions", headers=api, json={"reason": "理由", **body}
        )
        assert done.status_code == 201, done.text
    return clue_id, tip.json()["receipt"]


def test_clue_page_forms_and_the_reporters_view(server, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base_url, totp, token, approver = server
    clue_id, code = _concluded_real_name_clue(base_url, token, approver)
    context = browser.new_context(java_script_enabled=False, locale="zh-CN", accept_downloads=True)
    foreign: list[str] = []
    context.on("request", lambda r: None if r.url.startswith(base_url) else foreign.append(r.url))
    page = context.new_page()
    page.goto(f"{base_url}/staff/registry/clues/{clue_id}")
    assert "/staff/login" in page.url
    page.locator("#name").fill("回访主任")
    page.locator("#password").fill(PASSWORD)
    page.locator("#totp").fill(fresh_totp_code(totp))
    with page.expect_navigation():
        page.locator("#totp").press("Enter")
    page.goto(f"{base_url}/staff/registry/clues/{clue_id}")

    # A photo for the reporter, through the multipart form (streamed; metadata removed before it is stored).
    photo = tmp_path / "现场照片.jpg"
    photo.write_bytes(jpeg_with_gps(make="StaffPhone"))
    page.locator("#f-file-text").fill("请查看现场照片。")
    page.locator("#f-file").set_input_files(str(photo))
    page.get_by_role("button", name="发送文件").click()
    assert "已保存" in page.locator("main").inner_text()
    assert "请查看现场照片。" in page.locator("#thread").inner_text()

    # 回访: the deadline shows; a record is kept.
    assert "回访期限" in page.locator("#follow-up-due").inner_text()
    page.locator("#f-fu-channel").select_option("phone")
    page.locator("#f-fu-outcome").select_option("reached")
    page.locator("#f-fu-note").fill("举报人表示理解，留了新电话13912345678。")
    page.get_by_role("button", name="保存回访记录").click()
    follow_ups = page.locator("#follow-up-list").inner_text()
    assert "电话回访" in follow_ups and "［手机号］" in follow_ups and "13912345678" not in follow_ups
    assert "已回访" in page.locator("#follow-up-due").inner_text()

    # An objection by letter, then rejected with a reason; an empty reason is refused first.
    page.locator("#f-ob-channel").select_option("letter")
    page.locator("#f-ob-text").fill("来信称对结论不服。")
    page.get_by_role("button", name="登记异议").click()
    objections = page.locator("#objection-list")
    assert "已收到，待处理" in objections.inner_text() and "答复期限" in objections.inner_text()
    objections.locator("select[name=decision]").select_option("reject")
    objections.get_by_role("button", name="保存").click()
    assert "不予受理须写明理由" in page.locator("main").inner_text()
    objections = page.locator("#objection-list")
    objections.locator("select[name=decision]").select_option("reject")
    objections.locator("textarea[name=text]").fill("来信所述情况已在原核查中查明。")
    objections.get_by_role("button", name="保存").click()
    assert "不予受理" in page.locator("#objection-list").inner_text()

    # The reporter's side: the status page with the code, no JavaScript.
    page.goto(base_url + "/status")
    page.get_by_label("查询码").fill(code)
    page.get_by_role("button", name="查询").click()
    main = page.locator("main").inner_text()
    assert "请查看现场照片。" in main and "不予受理" in main and "来信所述情况已在原核查中查明。" in main
    assert "来信称对结论不服。" in main and "回访主任" not in main and "答复期限" not in main
    with page.expect_download() as fetched:
        page.get_by_role("button", name=re.compile("下载文件 1")).click()
    downloaded = Path(fetched.value.path()).read_bytes()
    assert downloaded[:2] == b"\xff\xd8" and b"StaffPhone" not in downloaded
    assert "现场照片" not in (fetched.value.suggested_filename or "")
    context.close()
    assert foreign == [], foreign
