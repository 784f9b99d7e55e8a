"""A supervisor's morning in a real browser (Debian chromium via Playwright, JavaScript off), on SQLite and
on PostgreSQL: log in, filter the ledger, open a clue (its history shows), assign it to an investigator, mark
it a key clue with a supervising leader; the API then shows the assignment and the supervision; a wrong step
shows the error."""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest

from tests.helpers.browser import browser_server, cli, fresh_totp_code, launch_chromium, require_chromium

pytestmark = pytest.mark.browser
PASSWORD = "registry console password 7"  # noqa: S105


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_chromium()
    data = tmp_path_factory.mktemp(f"registry-browser-{backend}")
    with browser_server(backend, data) as (proc, env):
        cli(env, "unit", "add", "--name", "区纪委监委")
        token = cli(env, "staff", "add", "--name", "台账主任", "--role", "supervisor").split()[-1]
        cli(env, "staff", "set-password", "台账主任", "--stdin", stdin=PASSWORD + "\n")
        uri = cli(env, "staff", "enrol-totp", "台账主任").strip().splitlines()[-1]
        cli(env, "staff", "add", "--name", "核查员甲", "--role", "investigator", "--unit", "区纪委监委")
        # Chromium treats localhost as a secure origin, so the Secure __Host- cookie works over http there.
        yield proc.base_url.replace("127.0.0.1", "localhost"), pyotp.parse_uri(uri), token


@pytest.fixture(scope="module")
def browser(server):  # type: ignore[no-untyped-def]
    with launch_chromium() as chromium:
        yield chromium


def test_supervisor_filters_opens_assigns_and_supervises(server, browser) -> None:  # type: ignore[no-untyped-def]
    base_url, totp, token = server
    numbers = []
    for text, channel_hint in (
        ("派出所民警收了红包，打招呼让案子不立案。", "a"),
        ("法官吃了原告吃被告。", "b"),
    ):
        response = httpx.post(
            f"{base_url}/api/v1/tips", json={"text": text, "accused": {"name": "孙某" + channel_hint}}
        )
        assert response.status_code == 201, response.text
        numbers.append(response.json()["registry_number"])
    api = {"Authorization": f"Bearer {token}"}
    clues = httpx.get(f"{base_url}/api/v1/clues", headers=api).json()["items"]
    first = next(c for c in clues if c["registry_number"] == numbers[0])
    # Triage the second one through the API so the status filter has something to separate.
    second = next(c for c in clues if c["registry_number"] == numbers[1])
    assert (
        httpx.post(
            f"{base_url}/api/v1/clues/{second['id']}/transitions",
            headers=api,
            json={"action": "triage", "reason": "分办", "route": False},
        ).status_code
        == 201
    )

    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    foreign: list[str] = []
    context.on("request", lambda r: None if r.url.startswith(base_url) else foreign.append(r.url))
    page = context.new_page()
    page.goto(base_url + "/staff/registry")
    assert "/staff/login" in page.url
    page.locator("#name").fill("台账主任")
    page.locator("#password").fill(PASSWORD)
    page.locator("#totp").fill(fresh_totp_code(totp))
    with page.expect_navigation():
        page.locator("#totp").press("Enter")
    assert "/staff/registry" in page.url, (page.url, page.locator("main").inner_text())

    # Filter: registered clues only.
    page.get_by_label(re.compile("^状态")).select_option("registered")
    page.get_by_role("button", name=re.compile("筛选")).click()
    table = page.locator("table.ledger")
    assert numbers[0] in table.inner_text() and numbers[1] not in table.inner_text()
    page.get_by_label(re.compile("^状态")).select_option("triaged")
    page.get_by_role("button", name=re.compile("筛选")).click()
    assert numbers[1] in table.inner_text() and numbers[0] not in table.inner_text()
    page.get_by_label(re.compile("^状态")).select_option("")
    page.get_by_role("button", name=re.compile("筛选")).click()

    # Open the first clue; its content shows (an audited read).
    page.get_by_role("link", name=numbers[0]).click()
    assert "派出所民警收了红包" in page.locator("p.report-text").inner_text()
    assert page.locator("#clue-handler").inner_text() == "未指定"

    # Assign.
    page.get_by_label(re.compile("^承办人")).select_option(label="核查员甲")
    page.get_by_role("button", name=re.compile("^交办")).click()
    assert "已保存" in page.locator("main").inner_text()
    assert page.locator("#clue-handler").inner_text() == "核查员甲"
    assert page.locator("#clue-unit").inner_text() == "区纪委监委"

    # Mark supervised: first without a leader (refused, nothing changes), then properly.
    page.get_by_label(re.compile("列为重点线索")).check()
    page.locator("#f-sup-reason").fill("群众反映强烈")
    page.get_by_role("button", name=re.compile("保存督办")).click()
    assert "重点线索须指定督办领导" in page.locator("main").inner_text()
    assert page.locator("#clue-supervised").inner_text() == "否"
    page.get_by_label(re.compile("列为重点线索")).check()
    page.get_by_label(re.compile("^督办领导")).select_option(label="台账主任")
    page.get_by_label(re.compile("领导包案")).check()
    page.locator("#f-sup-reason").fill("群众反映强烈")
    page.get_by_role("button", name=re.compile("保存督办")).click()
    assert "督办领导：台账主任（包案）" in page.locator("#clue-supervised").inner_text()
    history = page.locator("ol.history").inner_text()
    assert "督办设置" in history and "群众反映强烈" in history

    # The page offers only the steps open from the status, one form each; take one.
    steps = page.locator("form.step h3").all_inner_texts()
    assert "分办" in steps and "办结" not in steps and "归档" not in steps
    page.locator("#step-triage-reason").fill("分办")
    page.locator("#step-triage").get_by_role("button", name="分办").click()
    assert page.locator("#clue-status").inner_text() == "已分办"
    # A forged illegal step (archive from triaged) is refused with the reason, and changes nothing.
    hidden = page.locator("#assign input[name=csrf_token]")
    response = context.request.post(
        f"{base_url}/staff/registry/clues/{first['id']}/transition",
        form={
            hidden.get_attribute("name"): hidden.get_attribute("value"),
            "action": "archive",
            "reason": "x",
        },
    )
    assert response.status == 409 and "不能进行此操作" in response.text()

    # The supervision list and the printable meeting brief show it.
    page.goto(base_url + "/staff/registry/supervision")
    assert numbers[0] in page.locator("table.ledger").inner_text()
    page.goto(base_url + "/staff/registry/brief")
    assert numbers[0] in page.locator("#section-new + table").inner_text()
    assert numbers[0] in page.locator("#section-key + table").inner_text()
    assert numbers[1] not in page.locator("#section-key + table").inner_text()

    assert not foreign
    detail = httpx.get(f"{base_url}/api/v1/clues/{first['id']}", headers=api).json()
    assert detail["assignee_id"] and detail["status"] == "triaged"
    supervised = httpx.get(f"{base_url}/api/v1/supervision", headers=api).json()
    assert any(item["id"] == first["id"] and item["leader_takes_case"] for item in supervised)
