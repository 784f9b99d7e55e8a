"""What the staff site says back — a form's field errors, a refused change, an upload refused — is in the
page's language only: Chinese by default, English after the switch, never both (through a cookie
session, on SQLite and PostgreSQL). The pages themselves are checked in both languages in
tests/browser/test_staff_pages_browser.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx

from service.platform.timeutil import LOCAL
from tests.helpers.app import Harness
from tests.helpers.registry import make_world, submit
from tests.helpers.staff_pages import chinese_left, english_left, taxonomy_data
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff


async def _switch(client: httpx.AsyncClient, lang: str) -> None:
    response = await client.get(f"/staff/lang?to={lang}&next=%2Fstaff")
    assert response.status_code == 303


def _call_form(csrf: str, **fields: str) -> dict[str, str]:
    when = datetime.now(LOCAL) - timedelta(minutes=5)
    return {
        "csrf_token": csrf,
        "summary": "来电反映派出所民警收红包。",
        "call_date": when.date().isoformat(),
        "call_time": when.strftime("%H:%M"),
        "duration_minutes": "4",
        "accused_name": "张某",
        **fields,
    }


async def _refusals(client: httpx.AsyncClient) -> str:
    """A call with an accused name far too long, then a real-name call without the caller's name: both
    pages, one after the other."""
    texts = []
    for fields in ({"accused_name": "张" * 300}, {"real_name": "on"}):
        page = await client.get("/staff/hotline/calls/new")
        refused = await client.post("/staff/hotline/calls", data=_call_form(csrf_of(page.text), **fields))
        assert refused.status_code == 422
        texts.append(refused.text)
    return "\n".join(texts)


async def test_form_errors_are_in_the_page_language_only(harness: Harness) -> None:
    operator = await make_web_staff(harness, ["operator"])
    data = [operator.name, *taxonomy_data()]
    async with log_in(harness, operator) as client:
        refused = await _refusals(client)
        assert "实名来电须填写来电人姓名" in refused and "请检查此项：太长" in refused
        assert "needs caller_name" not in refused and "too long" not in refused
        assert english_left(refused, data) == []

        await _switch(client, "en")
        refused = await _refusals(client)
        assert "a real-name call needs caller_name" in refused and "too long" in refused
        assert "field(s) need correcting" in refused
        assert chinese_left(refused, data) == []


async def test_refusals_on_the_clue_page_and_uploads_are_in_the_page_language(harness: Harness) -> None:
    world = await make_world(harness)
    supervisor = await make_web_staff(harness, ["supervisor"], world.other_unit)  # before the clue (compartments)
    clue_id = await submit(harness, world)
    operator = await make_web_staff(harness, ["operator"])
    async with log_in(harness, supervisor) as client:
        await _switch(client, "en")
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert page.status_code == 200
        # Assigning with nobody chosen: the domain's refusal, in English only.
        refused = await client.post(
            f"/staff/registry/clues/{clue_id}/assign", data={"csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 422
        assert "choose an investigator" in refused.text and "请选择承办人" not in refused.text
        await _switch(client, "zh")
        refused = await client.post(
            f"/staff/registry/clues/{clue_id}/assign", data={"csrf_token": csrf_of(page.text)}
        )
        assert "请选择承办人" in refused.text and "choose an investigator" not in refused.text

    async with log_in(harness, operator) as client:
        page = await client.get("/staff/hotline/calls/new")
        done = await client.post("/staff/hotline/calls", data=_call_form(csrf_of(page.text)))
        assert done.status_code == 201
        match = re.search(r'href="(/staff/hotline/calls/[0-9a-f-]{36}/recording)"', done.text)
        assert match, "no link to upload the recording"
        recording = match.group(1)
        await _switch(client, "en")
        upload = await client.get(recording)
        empty = await client.post(
            recording,
            files={"csrf_token": (None, csrf_of(upload.text)), "file": ("", b"", "audio/mpeg")},
        )
        assert empty.status_code == 422
        assert "choose a file to upload" in empty.text and "请选择要上传的文件" not in empty.text
        assert chinese_left(empty.text, [operator.name]) == []


async def test_a_refused_page_says_why_in_its_language(harness: Harness) -> None:
    operator = await make_web_staff(harness, ["operator"])
    async with log_in(harness, operator) as client:
        # A page the role may not open: a page in the browser's language, not a JSON body.
        program = await client.get("/staff/registry", headers={"Accept": "application/json"})
        assert program.status_code == 403 and program.json()["error"]["message_en"]
        refused = await client.get("/staff/registry")
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
        assert program.json()["error"]["message"] in refused.text and 'href="/staff"' in refused.text
        await _switch(client, "en")
        refused = await client.get("/staff/registry")
        assert refused.status_code == 403 and '<html lang="en">' in refused.text
        assert program.json()["error"]["message_en"] in refused.text
        assert chinese_left(refused.text, [operator.name]) == []
        # A form sent without its CSRF token.
        expired = await client.post("/staff/hotline/calls", data=_call_form(""))
        assert expired.status_code == 403 and "reload the page" in expired.text
        assert chinese_left(expired.text, [operator.name]) == []
