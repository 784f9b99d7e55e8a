"""The citizen web channel over real HTTP (httpx against the ASGI app) on both databases."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime

import pytest
from PIL import Image
from sqlalchemy import select

from service.attachments.models import Attachment
from service.platform.crypto.stream import decrypt_stream
from service.platform.timeutil import LOCAL
from service.registry.models import Clue
from tests.helpers.app import unique
from tests.helpers.media import jpeg_with_gps, pdf_with_author
from tests.helpers.web import (
    clue_of_receipt,
    hidden_fields,
    open_status,
    post_reply,
    post_report,
    receipt_from,
    report_form,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_pages_have_security_headers_and_only_csrf_cookie(harness):
    client = harness.client
    client.cookies.clear()
    for path in ("/", "/report", "/status", "/?lang=en"):
        response = await client.get(path)
        assert response.status_code == 200, path
        headers = response.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "http" not in headers["content-security-policy"]  # no third-party source
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        cookies = response.headers.get_list("set-cookie")
        assert all(c.startswith("tl_csrf=") and "HttpOnly" in c and "SameSite=strict" in c for c in cookies)
    landing = await client.get("/")
    assert "我要举报" in landing.text and "查询进度" in landing.text
    assert "打招呼" not in landing.text  # taxonomy names and descriptions, not the matching terms
    assert "违规经商办企业" in landing.text
    english = await client.get("/?lang=en")
    assert "Make a report" in english.text
    css = await client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_report_form_size(harness):
    page = await harness.client.get("/report")
    assert len(page.content) < 100 * 1024
    assert 'name="text"' in page.text and 'type="file"' in page.text
    assert "最多 5 个文件" in page.text  # limits shown before upload


async def test_anonymous_report_with_attachments_strips_metadata(harness):
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"])  # holds the clue's key
    text = unique("派出所民警收了红包，压着案子不立案")
    response = await post_report(
        harness.client,
        {"text": text, "accused_unit": "某某派出所", "category_hint": "case_suppression"},
        files=[("photo.jpg", jpeg_with_gps()), ("scan.pdf", pdf_with_author())],
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    code = receipt_from(response.text)
    assert len(code) == 25
    runtime = harness.runtime
    clue_id = await clue_of_receipt(harness, code)
    async with runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        assert clue.channel == "web" and clue.real_name is False and clue.identity is None
        rows = list(
            (await session.execute(select(Attachment).where(Attachment.clue_id == clue_id))).scalars()
        )
    assert sorted(r.kind for r in rows) == ["application/pdf", "image/jpeg"]
    store = harness.data_dir / "blobs"
    for row in rows:
        # Sealed to the clue's own key at registration (compartments): its holder opens it.
        file_key = await harness.open_item(holder, clue_id, row.wrapped_key, f"attachment/{row.blob_id}")
        raw = (store / row.blob_id[:2] / row.blob_id).read_bytes()

        async def chunks(data=raw):
            yield data

        plain = b"".join([c async for c in decrypt_stream(file_key, f"attachment/{row.blob_id}", chunks())])
        if row.kind == "image/jpeg":
            assert b"Exif" not in plain and b"PhoneMaker" not in plain
            assert Image.open(io.BytesIO(plain)).getexif().get(0x8825) is None
            assert "jpeg:APP1/Exif=1" in row.removed_metadata.split(",")
        else:
            assert b"Zhang San" not in plain and b"SecretTool" not in plain
            assert row.removed_metadata == "pdf:redrawn=1"  # mat2 redrew it: no original object
        assert b"Zhang San" not in raw and b"PhoneMaker" not in raw  # stored encrypted


async def test_validation_errors_keep_input_and_store_nothing(harness):
    async with harness.runtime.session_factory() as session:
        before = len((await session.execute(select(Clue.id))).all())
    response = await post_report(
        harness.client,
        {
            "text": "",
            "accused_name": "王某",
            "identity": "real_name",
            "contact_name": "",
            "contact_email": "not-an-email",
            "category_hint": "nonexistent",
        },
        files=[("a.txt", "一些文字".encode())],
    )
    assert response.status_code == 422
    page = response.text
    assert 'id="error-summary"' in page
    for field in ("text", "contact_name", "contact_email", "category_hint", "files"):
        assert f'id="e-{field}"' in page, field
        assert f'href="#f-{field}"' in page, field
    assert 'value="王某"' in page  # what was typed is kept
    assert 'value="not-an-email"' in page
    assert "请描述发生了什么" in page
    async with harness.runtime.session_factory() as session:
        assert len((await session.execute(select(Clue.id))).all()) == before


async def test_real_name_needs_contact_and_seals_identity(harness):
    missing = await post_report(harness.client, {"text": "法官私下见当事人", "identity": "real_name"})
    assert missing.status_code == 422
    assert 'id="e-contact_name"' in missing.text and 'id="e-contact_phone"' in missing.text
    ok = await post_report(
        harness.client,
        {
            "text": unique("法官私下见当事人"),
            "identity": "real_name",
            "contact_name": "李四",
            "contact_phone": "13800000000",
        },
    )
    assert ok.status_code == 200


async def test_anonymous_drops_contact_fields(harness):
    ok = await post_report(
        harness.client, {"text": unique("检察官吃请"), "identity": "anonymous", "contact_name": "不该保存"}
    )
    assert ok.status_code == 200
    clue_id = await clue_of_receipt(harness, receipt_from(ok.text))
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
    assert clue.identity is None and clue.real_name is False


async def test_wrong_type_and_oversize_uploads(harness):
    wrong = await post_report(
        harness.client, {"text": "看守所"}, files=[("x.html", b"<html><script>1</script>")]
    )
    assert wrong.status_code == 422 and 'id="e-files"' in wrong.text
    exe = await post_report(harness.client, {"text": "看守所"}, files=[("x.jpg", b"MZ\x90\x00" + bytes(200))])
    assert exe.status_code == 422
    big = await post_report(
        harness.client, {"text": "看守所"}, files=[("big.txt", b"a" * (20 * 1024 * 1024 + 10))]
    )
    assert big.status_code == 422 and "太大" in big.text
    blobs = harness.data_dir / "blobs"
    assert not list((blobs / ".tmp").glob("*")) if blobs.exists() else True


async def test_csrf_rejection(harness):
    client = harness.client
    hidden = await report_form(client)
    bad = {**hidden, "csrf": "0" * 40, "text": "测试"}
    response = await client.post("/report", files=[(k, (None, v.encode())) for k, v in bad.items()])
    assert response.status_code == 403
    other_origin = await post_report(client, {"text": "测试"}, headers={"Origin": "http://evil.example"})
    assert other_origin.status_code == 403
    status = await client.post("/status", data={"csrf": "x", "code": "1" * 25})
    assert status.status_code == 403


async def test_status_page_messages_and_reply(harness):
    client = harness.client
    _, token = await harness.add_staff(unique("sup"), ["supervisor"])  # before the report: holds its key
    response = await post_report(client, {"text": unique("民警收保护费")})
    code = receipt_from(response.text)
    clue_id = await clue_of_receipt(harness, code)
    sent = await client.post(
        f"/api/v1/clues/{clue_id}/messages",
        json={"text": "请问具体是哪一天？"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert sent.status_code == 201, sent.text
    spaced = " ".join(code[i : i + 5] for i in range(0, 25, 5))
    page = await open_status(client, spaced)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "请问具体是哪一天？" in page.text
    # Plain words that promise no more than is true: received, never "accepted" (a formal decision).
    assert "已收到，正在登记分办" in page.text and "已受理" not in page.text
    today = datetime.now(LOCAL)
    assert f"{today.year}年{today.month}月{today.day}日" in page.text  # the submission date
    assert "15 个工作日内" in page.text  # the acceptance notice for real-name reporters, and how
    assert re.search(r"办理人员 · <time>\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}</time>", page.text)
    assert sent.json()["author_id"] not in page.text
    reply = await post_reply(client, page.text, "大概是三月五日", files=[("note.txt", "补充材料".encode())])
    assert reply.status_code == 200, reply.text
    assert "大概是三月五日" in reply.text and '<p class="notice ok" role="status">消息已发送。' in reply.text
    thread = await client.get(
        f"/api/v1/clues/{clue_id}/messages", headers={"Authorization": f"Bearer {token}"}
    )
    items = thread.json()
    assert [m["direction"] for m in items] == ["to_reporter", "from_reporter"]
    assert items[1]["text"] == "大概是三月五日" and len(items[1]["attachments"]) == 1


async def test_wrong_codes_look_the_same(harness):
    client = harness.client
    answers = []
    for code in ("1" * 25, "abc", "", "1234"):
        page = await open_status(client, code)
        answers.append((page.status_code, page.text.split('id="e-code">')[1].split("<")[0]))
    assert len(set(answers)) == 1 and answers[0][0] == 404


async def test_receipt_api_code_in_header_or_body(harness):
    client = harness.client
    response = await post_report(client, {"text": unique("法院执行干警吃拿卡要")})
    code = receipt_from(response.text)
    by_header = await client.post("/api/v1/receipt/status", headers={"X-Receipt-Code": code})
    assert by_header.status_code == 200 and by_header.json()["status"]
    by_body = await client.post("/api/v1/receipt/status", json={"receipt": code})
    assert by_body.status_code == 200
    reply = await client.post("/api/v1/receipt/messages", json={"receipt": code, "text": "补充：还有一人"})
    assert reply.status_code == 201 and reply.json()["messages"][-1]["text"] == "补充：还有一人"
    wrong = await client.post("/api/v1/receipt/status", json={"receipt": "9" * 25})
    assert wrong.status_code == 404 and json.loads(wrong.text)["error"]["message_en"]


async def test_hidden_fields_present(harness):
    page = await harness.client.get("/status")
    assert set(hidden_fields(page.text)) == {"csrf", "lang"}
