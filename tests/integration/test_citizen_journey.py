"""The citizen's journey over real HTTP (httpx against the ASGI app), on both databases: a report is filed
once (post/redirect/get, the form's idempotency key), its receipt is shown once, the deployment's identity
comes from the settings and placeholders never reach the public (production refuses to start with them),
and the poster prints the form's address as a QR code."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from service.app.main import create_app
from service.citizen.once import RECEIPT_COOKIE
from service.classification.taxonomy import DEFAULT_TAXONOMY_PATH
from service.intake.models import SubmittedForm
from service.platform.settings import SettingsError
from service.registry.models import Clue
from tests.helpers.app import auth, make_settings, unique
from tests.helpers.hotline import call_body
from tests.helpers.web import hidden_fields, open_status, post_reply, receipt_from, report_form, send_report

pytestmark = pytest.mark.asyncio(loop_scope="session")

OWN = {
    "TIPLINE_WEB_COMMITTEE_NAME": "测试区委政法委员会",
    "TIPLINE_WEB_HOTLINE_NUMBER": "0571-87654321",
    "TIPLINE_WEB_MAILBOX_ADDRESS": "jubao@zfw.cs-district.gov.cn",
    "TIPLINE_WEB_PUBLIC_URL": "https://jubao.cs-district.gov.cn",
}


@asynccontextmanager
async def app_with(
    data_dir: Path, database_url: str, **env: str
) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        app = create_app(make_settings(data_dir, database_url, database_auto_upgrade=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tipline.test") as client:
            yield app, client


async def clue_count(app: object) -> int:
    async with app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
        return int(await session.scalar(select(func.count()).select_from(Clue)) or 0)


async def filled_form(client: httpx.AsyncClient, text: str) -> dict[str, str]:
    return {**(await report_form(client)), "text": text}  # no proof of work: the queue takes it


async def test_receipt_is_shown_once_and_a_resend_files_nothing(fresh_database_url: str, tmp_path: Path):
    async with app_with(tmp_path / "data", fresh_database_url) as (app, client):
        form = await filled_form(client, unique("派出所民警收钱不立案"))
        assert form["submission_key"]
        first = await send_report(client, form, follow=False)
        assert first.status_code == 303 and first.headers["location"] == "/receipt"
        cookie = next(c for c in first.headers.get_list("set-cookie") if c.startswith(RECEIPT_COOKIE))
        assert "HttpOnly" in cookie and "Path=/receipt" in cookie and "SameSite=strict" in cookie
        assert "Max-Age" not in cookie and "expires" not in cookie.lower()  # a session cookie
        assert await clue_count(app) == 1

        receipt = await client.get("/receipt")
        code = receipt_from(receipt.text)
        assert receipt.status_code == 200 and receipt.headers["cache-control"] == "no-store"
        assert "您的举报已提交" in receipt.text and "已受理" not in receipt.text
        assert (
            "我已抄下查询码" in receipt.text and "复制查询码" in receipt.text and "打印本页" in receipt.text
        )
        assert "您是匿名举报" in receipt.text and "前提出处置意见" in receipt.text
        # No link leads away (a language switch would reload it, and a reload never shows the code again).
        header = receipt.text.split("<header")[1].split("</header>")[0]
        assert "<a " not in header and "?lang=en" not in receipt.text
        assert f'{RECEIPT_COOKIE}=""' in receipt.headers["set-cookie"]  # deleted once shown

        reload = await client.get("/receipt")  # the reload: never the code again, nothing filed
        assert reload.status_code == 200 and "查询码已经显示过" in reload.text and code not in reload.text
        # Even the sealed cookie replayed by hand opens only once.
        async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as other_client:
            other_client.cookies.set(RECEIPT_COOKIE, first.cookies[RECEIPT_COOKIE])
            replayed = await other_client.get("/receipt")
        assert code not in replayed.text and "查询码已经显示过" in replayed.text

        resent = await send_report(client, form)  # the same form again (back button, resubmit)
        assert resent.status_code == 200 and "这份举报已经收到，没有重复提交。" in resent.text
        assert code not in resent.text
        assert await clue_count(app) == 1

        other = await send_report(client, await filled_form(client, unique("法官收红包")))
        assert other.status_code == 200 and receipt_from(other.text) != code
        assert await clue_count(app) == 2


async def test_double_tap_files_one_report_and_both_answers_lead_to_the_receipt(
    fresh_database_url: str, tmp_path: Path
):
    async with app_with(tmp_path / "data", fresh_database_url) as (app, client):
        form = await filled_form(client, unique("看守所民警收钱传递纸条"))
        one, two = await asyncio.gather(
            send_report(client, form, follow=False), send_report(client, form, follow=False)
        )
        assert await clue_count(app) == 1
        answers = sorted([one, two], key=lambda r: r.status_code)
        # The second waits for the first and gets the same receipt view (after a double tap the browser
        # shows only the second answer), or, if the first had already finished, "already received".
        assert answers[1].status_code == 303
        if answers[0].status_code == 303:
            assert one.cookies[RECEIPT_COOKIE] == two.cookies[RECEIPT_COOKIE]
        else:
            assert "这份举报已经收到" in answers[0].text
        shown = await client.get("/receipt")
        assert len(receipt_from(shown.text)) == 25


async def test_a_form_without_a_valid_key_is_shown_again_and_files_nothing(
    fresh_database_url: str, tmp_path: Path
):
    async with app_with(tmp_path / "data", fresh_database_url) as (app, client):
        for key in ("", "forged-key", "A" * 48):
            form = {**(await filled_form(client, "民警收钱后把案子压着不办。")), "submission_key": key}
            page = await send_report(client, form)
            assert page.status_code == 422 and "此页面打开时间过长" in page.text
            assert "民警收钱后把案子压着不办。" in page.text  # what was written is kept
            fresh = hidden_fields(page.text)["submission_key"]
            assert fresh and fresh != key
        assert await clue_count(app) == 0
        # A form shown again for a mistake keeps its key: sending the corrected form files it once.
        bad = {**(await report_form(client)), "text": ""}
        shown = await send_report(client, bad)
        assert (
            shown.status_code == 422 and hidden_fields(shown.text)["submission_key"] == bad["submission_key"]
        )
        corrected = {**hidden_fields(shown.text), "text": unique("监狱民警违规办理减刑")}
        assert (await send_report(client, corrected)).status_code == 200
        assert "已经收到" in (await send_report(client, corrected)).text
        assert await clue_count(app) == 1


async def test_real_name_receipt_names_the_acceptance_notice(harness):
    form = {
        **(await report_form(harness.client)),
        "text": unique("法院干警违规经商"),
        "identity": "real_name",
        "contact_name": "李四",
        "contact_phone": "13800000000",
    }
    page = await send_report(harness.client, form)
    assert page.status_code == 200
    assert (
        "您是实名举报：我们将在 15 个工作日内" in page.text
        and "通过您留下的电话或电子邮箱告知是否受理" in page.text
    )
    assert "李四" not in page.text and "13800000000" not in page.text


async def test_upload_limits_are_stated_by_the_field_and_in_the_error(harness):
    form = await report_form(harness.client)
    page = await harness.client.get("/report")
    assert "最多 5 个文件，每个不超过 20 MB" in page.text
    data = {**form, "text": unique("民警收钱")}
    wrong = await send_report(harness.client, data, [("x.exe", b"MZ\x90\x00" + b"\x00" * 200)])
    assert wrong.status_code == 422
    assert "第 1 个文件类型不允许上传" in wrong.text and "允许的类型：图片、PDF" in wrong.text


async def test_form_order_reminder_and_punctuation(harness):
    page = (await harness.client.get("/report")).text
    assert page.index('name="text"') < page.index('name="accused_name"')  # what happened comes first
    assert "请不要在这里写您自己的姓名、电话或住址" in page
    assert "（必填）" in page and "(必填)" not in page
    english = (await harness.client.get("/report?lang=en")).text
    assert "Do not write your own name" in english


async def test_placeholders_are_never_shown_and_own_values_are(fresh_database_url: str, tmp_path: Path):
    async with app_with(tmp_path / "data", fresh_database_url) as (_app, client):
        landing = (await client.get("/")).text
        assert "example" not in landing and "示例" not in landing and "默认项" not in landing
        assert "作风纪律问题" not in landing  # an example "N" category of the packaged taxonomy
        assert "违规经商办企业" in landing  # the national six stay
        assert "举报电话" not in landing  # not configured: left out, not invented
    async with app_with(tmp_path / "data2", fresh_database_url, **OWN) as (_app, client):
        landing = (await client.get("/")).text
        assert "测试区委政法委员会" in landing
        assert "举报电话：0571-87654321" in landing and "举报邮箱：jubao@zfw.cs-district.gov.cn" in landing


async def test_favicon(harness):
    icon = await harness.client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header


async def test_poster_prints_identity_and_the_form_address_as_qr(fresh_database_url: str, tmp_path: Path):
    async with app_with(tmp_path / "data", fresh_database_url, **OWN) as (_app, client):
        poster = await client.get("/poster")
    assert poster.status_code == 200
    text = poster.text
    assert "测试区委政法委员会" in text and "0571-87654321" in text and "jubao@zfw.cs-district.gov.cn" in text
    assert "https://jubao.cs-district.gov.cn/report" in text
    assert "<svg" in text and "<path" in text  # the QR code, drawn here, no image from elsewhere
    assert "http" not in poster.headers["content-security-policy"]
    assert 'src="http' not in text and 'href="http' not in text
    assert "您可以不留姓名" in text


async def test_poster_qr_decodes_to_the_form_address(fresh_database_url: str, tmp_path: Path):
    import segno

    async with app_with(tmp_path / "data", fresh_database_url, **OWN) as (_app, client):
        poster = (await client.get("/poster")).text
        css = await client.get("/static/poster.css")
    assert css.status_code == 200 and "size:A4" in css.text
    expected = segno.make("https://jubao.cs-district.gov.cn/report", error="m")
    assert expected.svg_inline(scale=1, border=4, omitsize=True) in poster


async def test_production_refuses_placeholders(fresh_database_url: str, tmp_path: Path):
    data = tmp_path / "data"
    async with app_with(data, fresh_database_url):
        pass  # development material (keys) for the production start below
    production = {"TIPLINE_ENVIRONMENT": "production", "TIPLINE_LOOKUP_SECRET": "s" * 40}
    with pytest.raises(SettingsError) as refused:
        async with app_with(data, fresh_database_url, **production):
            raise AssertionError("production started with placeholder values")
    message = str(refused.value)
    for name in ("COMMITTEE_NAME", "HOTLINE_NUMBER", "MAILBOX_ADDRESS", "PUBLIC_URL"):
        assert f"TIPLINE_WEB_{name}" in message
    assert "TIPLINE_TAXONOMY_PATH" in message

    # Example values are refused like empty ones; the committee's own file and values start.
    with pytest.raises(SettingsError) as refused:
        example = {**production, **OWN, "TIPLINE_WEB_MAILBOX_ADDRESS": "jubao@example.gov.cn"}
        async with app_with(data, fresh_database_url, **example):
            raise AssertionError("production started with an example mailbox")
    assert "TIPLINE_WEB_MAILBOX_ADDRESS" in str(refused.value)
    assert "TIPLINE_WEB_HOTLINE_NUMBER" not in str(refused.value)

    own = json.loads(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"))
    own["categories"] = [c for c in own["categories"] if c["tier"] != "N"]
    for category in own["categories"]:
        category["description"] = category["description"].replace("（默认项，请按本地通知替换）", "")
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(json.dumps(own, ensure_ascii=False), encoding="utf-8")
    async with app_with(
        data, fresh_database_url, **production, **OWN, TIPLINE_TAXONOMY_PATH=str(taxonomy)
    ) as (
        _app,
        client,
    ):
        landing = await client.get("/")
        assert landing.status_code == 200 and "测试区委政法委员会" in landing.text


async def test_a_field_after_the_files_is_refused_not_missed(fresh_database_url: str, tmp_path: Path):
    """The checks run when the first file arrives: a real-name choice sent after it must not be dropped
    silently (the report would be filed as anonymous), so such a form is refused and nothing is filed."""
    async with app_with(tmp_path / "data", fresh_database_url) as (app, client):
        form = await filled_form(client, unique("民警违规插手经济纠纷"))
        parts = [(k, (None, v.encode())) for k, v in form.items()]
        parts.append(("files", ("note.txt", b"plain note", "text/plain")))
        parts += [("identity", (None, b"real_name")), ("contact_name", (None, "李四".encode()))]
        refused = await client.post("/report", files=parts)
        assert refused.status_code == 400 and "无法读取" in refused.text
        assert await clue_count(app) == 0


async def test_a_hotline_callers_new_code_stays_until_confirmed(harness):
    """The code given by phone is replaced at the first web use; the new one stays on every page the caller
    moves to (reply, call record) until they say they have written it down."""
    client = harness.client
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    made = await client.post(
        "/api/v1/hotline/calls",
        json=call_body(summary=unique("来电反映民警索要好处费")),
        headers=auth(operator),
    )
    assert made.status_code == 201, made.text
    status = await open_status(client, made.json()["receipt"])
    new_code = receipt_from(status.text)
    assert "您的新查询码" in status.text and "我已抄下新的查询码" in status.text

    replied = await post_reply(client, status.text, "补充：当时还有一名辅警在场。")
    assert replied.status_code == 200 and "消息已发送" in replied.text
    assert receipt_from(replied.text) == new_code and "我已抄下新的查询码" in replied.text

    record = await client.post("/status/call-record", data=_form(replied.text, "/status/call-record"))
    assert record.status_code == 200 and receipt_from(record.text) == new_code

    confirmed = await client.post("/status", data=_form(record.text, "/status"))  # "I have written it down"
    assert confirmed.status_code == 200
    assert "您的新查询码" not in confirmed.text and '<p class="code"' not in confirmed.text
    assert 'name="new_code"' not in confirmed.text


def _form(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the first form on the page that posts to ``action``."""
    for found, body in re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', html, re.S):
        if found == action:
            return hidden_fields(body)
    raise AssertionError(f"no form posting to {action}")


async def test_a_resend_reaching_another_server_process_files_nothing(
    fresh_database_url: str, tmp_path: Path
):
    """Two server processes (two apps on one database and one data directory, as `serve --workers 2`):
    the form's key is remembered in the database, not in the process that filed it."""
    data = tmp_path / "data"
    async with (
        app_with(data, fresh_database_url) as (app_one, one),
        app_with(data, fresh_database_url) as (
            _,
            two,
        ),
    ):
        form = await filled_form(one, unique("派出所所长插手经济纠纷"))
        two.cookies.update(one.cookies)  # one browser: its requests reach either process
        first = await send_report(one, form, follow=False)
        assert first.status_code == 303
        resent = await send_report(two, form)  # the resend lands on the other process
        assert resent.status_code == 200 and "这份举报已经收到，没有重复提交。" in resent.text
        assert await clue_count(app_one) == 1

        # A double tap split across the processes: one report, and both answers lead to the same receipt.
        form = await filled_form(one, unique("法院执行局法官吃拿卡要"))
        two.cookies.update(one.cookies)
        a, b = await asyncio.gather(
            send_report(one, form, follow=False), send_report(two, form, follow=False)
        )
        assert await clue_count(app_one) == 2
        # The copy that waited for the first gets the same receipt; if the first had already finished when
        # the second arrived, the second says "already received".
        answers = sorted([a, b], key=lambda r: r.status_code)
        assert answers[1].status_code == 303
        if answers[0].status_code == 303:
            assert a.cookies[RECEIPT_COOKIE] == b.cookies[RECEIPT_COOKIE]
        else:
            assert "这份举报已经收到" in answers[0].text
        view = answers[1].cookies[RECEIPT_COOKIE]
        shown = await two.get("/receipt", cookies={RECEIPT_COOKIE: view})
        assert len(receipt_from(shown.text)) == 25


async def test_the_database_keeps_only_a_keyed_digest_of_the_form_key(
    fresh_database_url: str, tmp_path: Path
):
    async with app_with(tmp_path / "data", fresh_database_url) as (app, client):
        form = await filled_form(client, unique("监狱干警违规减刑"))
        assert (await send_report(client, form, follow=False)).status_code == 303
        async with app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
            rows = (await session.execute(select(SubmittedForm))).scalars().all()
        assert len(rows) == 1 and rows[0].state == "filed"
        assert len(rows[0].digest) == 32 and form["submission_key"].encode() not in rows[0].digest
        assert rows[0].view and "code" not in rows[0].view  # sealed, kept briefly for a double tap only
        assert set(SubmittedForm.__table__.columns.keys()) == {  # nothing that names the clue
            "digest",
            "state",
            "hold_until",
            "view",
            "expires_at",
        }


async def test_a_claim_whose_process_died_is_taken_over(fresh_database_url: str, tmp_path: Path):
    """A process that died while filing leaves its claim: the next copy of the form waits while the claim
    holds, then files the report."""
    async with app_with(tmp_path / "data", fresh_database_url) as (app, client):
        form = await filled_form(client, unique("看守所民警私自传递物品"))
        keys = app.state.web.keys  # type: ignore[attr-defined]
        form_key = keys.check(form["submission_key"])
        keys.hold_seconds, keys.wait_seconds = 1.0, 0.3
        assert (await keys.begin(form_key)).outcome == "new"  # ... and that process dies here
        busy = await send_report(client, form)
        assert busy.status_code == 503 and "不会重复提交" in busy.text
        assert await clue_count(app) == 0
        await asyncio.sleep(1.1)  # the claim's hold has passed
        assert (await send_report(client, form)).status_code == 200
        assert await clue_count(app) == 1
