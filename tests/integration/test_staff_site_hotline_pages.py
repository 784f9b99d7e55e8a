"""The staff pages for calls, additions, letters, visits and staff sources, through a cookie session."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from service.intake.models import Receipt
from service.platform.timeutil import LOCAL
from service.registry.models import Clue
from tests.helpers.app import Harness
from tests.helpers.hotline import assert_absent_from_database, caller_number
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff

RECEIPT_RE = re.compile(r'<p class="receipt"[^>]*>((?:<span>\d{5}</span>){5})</p>')
NUMBER_RE = re.compile(r"LG-\d{4}-\d{6}")


def _code(html: str) -> str:
    match = RECEIPT_RE.search(html)
    assert match, "no grouped receipt on the page"
    return "".join(re.findall(r"\d{5}", match.group(1)))


async def test_operator_records_a_call_on_the_page(harness: Harness) -> None:
    operator = await make_web_staff(harness, ["operator"])
    number = caller_number()
    async with log_in(harness, operator) as client:
        page = await client.get("/staff/hotline/calls/new")
        assert page.status_code == 200 and "登记来电" in page.text and "<script" not in page.text
        when = datetime.now(LOCAL) - timedelta(minutes=5)
        form = {
            "csrf_token": csrf_of(page.text),
            "summary": "来电反映派出所民警李某收红包后不立案。",
            "caller_words": "他说给钱就不用立案了。",
            "call_date": when.date().isoformat(),
            "call_time": when.strftime("%H:%M"),
            "duration_minutes": "7",
            "caller_number": number,
            "callback_allowed": "on",
            "callback_how": "晚上八点后",
            "accused_name": "李某",
            "accused_unit": "某某派出所",
        }
        done = await client.post("/staff/hotline/calls", data=form)
        assert done.status_code == 201, done.text
        code = _code(done.text)
        registry_number = NUMBER_RE.search(done.text).group(0)
        assert done.headers["cache-control"] == "no-store"
        # The caller phones again: the operator adds to the clue with the code.
        add_page = await client.get("/staff/hotline/add")
        added = await client.post(
            "/staff/hotline/add",
            data={"csrf_token": csrf_of(add_page.text), "receipt": code, "text": "补充：还有一次在饭店。"},
        )
        assert added.status_code == 201 and "补充内容已记录" in added.text
        wrong = await client.post(
            "/staff/hotline/add",
            data={"csrf_token": csrf_of(add_page.text), "receipt": "1" * 25, "text": "x"},
        )
        assert wrong.status_code == 404 and "查询码无效" in wrong.text
        # Missing CSRF token: refused, nothing stored.
        refused = await client.post(
            "/staff/hotline/calls", data={k: v for k, v in form.items() if k != "csrf_token"}
        )
        assert refused.status_code == 403
    async with harness.runtime.session_factory() as session:
        clue = await session.scalar(select(Clue).where(Clue.registry_number == registry_number))
        assert clue.channel == "hotline" and clue.identity is not None
        assert (await session.scalar(select(Receipt).where(Receipt.clue_id == clue.id))).read_aloud
    await assert_absent_from_database(harness, number)


async def test_call_page_shows_field_errors_and_keeps_input(harness: Harness) -> None:
    operator = await make_web_staff(harness, ["operator"])
    async with log_in(harness, operator) as client:
        page = await client.get("/staff/hotline/calls/new")
        response = await client.post(
            "/staff/hotline/calls",
            data={
                "csrf_token": csrf_of(page.text),
                "summary": "",
                "call_date": "2026-13-45",
                "call_time": "10:00",
                "duration_minutes": "abc",
                "caller_words": "保留这段话",
                "caller_number": "not a phone",
            },
        )
        assert response.status_code == 422
        for field in ("summary", "call_started_at", "duration_seconds", "caller_number"):
            assert f'id="err-{field}"' in response.text, field
        assert "保留这段话" in response.text
        assert "not a phone" not in re.sub(r'value="[^"]*"', "", response.text)  # not echoed in errors


async def test_pages_follow_the_role_table(harness: Harness) -> None:
    investigator = await make_web_staff(harness, ["investigator"])
    async with log_in(harness, investigator) as client:
        assert (await client.get("/staff/hotline/calls/new")).status_code == 403
        assert (await client.get("/staff/sources/new")).status_code == 403
        home = await client.get("/staff")
        assert "登记来电" not in home.text
        forbidden = await client.post(
            "/staff/sources",
            data={"csrf_token": csrf_of(home.text), "source": "superior_assigned", "text": "x"},
        )
        assert forbidden.status_code == 403
    operator = await make_web_staff(harness, ["operator"])
    async with log_in(harness, operator) as client:
        assert (await client.get("/staff/sources/new")).status_code == 403
        assert (await client.get("/staff/letters/new")).status_code == 200
        assert (await client.get("/staff/visits/new")).status_code == 200


async def test_letter_visit_and_sources_on_pages(harness: Harness) -> None:
    operator = await make_web_staff(harness, ["operator"])
    today = datetime.now(LOCAL).date()
    async with log_in(harness, operator) as client:
        page = await client.get("/staff/letters/new")
        letter = await client.post(
            "/staff/letters",
            data={
                "csrf_token": csrf_of(page.text),
                "postmark_date": (today - timedelta(days=3)).isoformat(),
                "received_date": today.isoformat(),
                "text": "来信反映法院执行局干警违规经商。",
                "writer_address": "某省某市某路1号",
            },
        )
        assert letter.status_code == 201, letter.text
        _code(letter.text)
        page = await client.get("/staff/visits/new")
        missing = await client.post(
            "/staff/visits",
            data={"csrf_token": csrf_of(page.text), "visit_date": today.isoformat(), "text": ""},
        )
        assert missing.status_code == 422 and 'id="err-text"' in missing.text
        assert 'id="err-received_by"' in missing.text
    supervisor = await make_web_staff(harness, ["supervisor"])
    async with log_in(harness, supervisor) as client:
        page = await client.get("/staff/sources/new?source=superior_assigned")
        assert "交办文号" in page.text
        bad = await client.post(
            "/staff/sources",
            data={
                "csrf_token": csrf_of(page.text),
                "source": "superior_assigned",
                "text": "市委政法委交办线索",
            },
        )
        assert bad.status_code == 422
        for field in ("assigning_body", "document_number", "received_date", "deadline"):
            assert f'id="err-{field}"' in bad.text, field
        good = await client.post(
            "/staff/sources",
            data={
                "csrf_token": csrf_of(page.text),
                "source": "superior_assigned",
                "text": "市委政法委交办：某看守所民警违规保外就医。",
                "assigning_body": "市委政法委",
                "document_number": "政法交〔2026〕12号",
                "received_date": today.isoformat(),
                "deadline": (today + timedelta(days=30)).isoformat(),
            },
        )
        assert good.status_code == 201, good.text
        page = await client.get("/staff/sources/new?source=voluntary_confession")
        assert "自查从宽" in page.text
