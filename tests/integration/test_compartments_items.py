"""Items about a clue written by processes that do not hold its content key, on both databases: reporter
follow-ups and staff replies (messages), their files' keys, staff documents and files sent to the reporter,
hotline additions. Each is sealed to the clue's own key: a staff member holding a wrap of the clue's key
reads it, one without gets a clear 403, and the stored bytes do not open with the staff server's case key.
A clue sealed before compartments keeps the case key for its items."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from service.attachments.models import Attachment
from service.compartments import keys as compartment_keys
from service.compartments.models import ClueSealed
from service.messages.models import Message
from service.platform.crypto.envelope import EnvelopeError
from service.registry.additions import ClueAddition
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import call_body
from tests.helpers.media import png_bytes
from tests.helpers.web import clue_of_receipt, open_status, post_reply, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")

FOLLOW_UP = "补充：他上个月又收了两万"
REPLY_FILE = "补充材料：转账记录".encode()


def _refused(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["message"] and error["message_en"]  # the clear refusal, Chinese and English


def _not_for_the_case_key(harness: Harness, data: bytes, binding: str) -> None:
    assert compartment_keys.sealed_to_clue(data)
    with pytest.raises(EnvelopeError):
        harness.runtime.keys.open(data, binding)


async def _web_clue_with_follow_up(harness: Harness) -> tuple[str, str]:
    client = harness.client
    response = await post_report(client, {"text": unique("区住建局科长吃拿卡要")})
    code = receipt_from(response.text)
    page = await open_status(client, code)
    reply = await post_reply(client, page.text, FOLLOW_UP, files=[("转账.txt", REPLY_FILE)])
    assert reply.status_code == 200, reply.text
    return await clue_of_receipt(harness, code), code


async def test_messages_and_their_files_open_only_for_holders_of_the_clue_key(harness: Harness) -> None:
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"])  # there at registration: a wrap
    clue_id, _ = await _web_clue_with_follow_up(harness)
    _, late = await harness.add_staff(unique("新督办"), ["supervisor"])  # no wrap of this clue's key
    client = harness.client

    sent = await client.post(
        f"/api/v1/clues/{clue_id}/messages", json={"text": "请问在哪里？"}, headers=auth(holder)
    )
    assert sent.status_code == 201, sent.text
    sent_file = await client.post(
        f"/api/v1/clues/{clue_id}/messages/file", content=png_bytes(), headers=auth(holder)
    )
    assert sent_file.status_code == 201, sent_file.text
    document = await client.post(
        f"/api/v1/clues/{clue_id}/documents", content=png_bytes(), headers=auth(holder)
    )
    assert document.status_code == 201, document.text

    thread = await client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(holder))
    assert thread.status_code == 200, thread.text
    assert [m["text"] for m in thread.json()][:2] == [FOLLOW_UP, "请问在哪里？"]
    _refused(await client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(late)))

    async with harness.runtime.session_factory() as session:
        messages = list(await session.scalars(select(Message).where(Message.clue_id == clue_id)))
        files = list(await session.scalars(select(Attachment).where(Attachment.clue_id == clue_id)))
    assert len(messages) == 3 and len(files) == 3  # follow-up + its file, file to the reporter, document
    for message in messages:
        _not_for_the_case_key(harness, message.body, f"messages/{message.id}/body")
    for row in files:
        _not_for_the_case_key(harness, row.wrapped_key, f"attachment/{row.blob_id}")
        download = await client.get(f"/api/v1/attachments/{row.id}", headers=auth(holder))
        assert download.status_code == 200, download.text
        _refused(await client.get(f"/api/v1/attachments/{row.id}", headers=auth(late)))
    reporters_file = next(r for r in files if r.message_id == messages[0].id)
    reporters = await client.get(f"/api/v1/attachments/{reporters_file.id}", headers=auth(holder))
    assert reporters.content == REPLY_FILE

    # Redaction reads a message's text through the same key: the holder may, the late supervisor may not.
    follow_up = next(m for m in messages if m.author_id is None)
    redact = {
        "target": "message",
        "target_id": follow_up.id,
        "base_version": 0,
        "quotes": ["两万"],
        "reason": "金额另案",
    }
    assert (
        await client.post(f"/api/v1/clues/{clue_id}/redactions/texts", json=redact, headers=auth(holder))
    ).status_code == 201
    _refused(await client.post(f"/api/v1/clues/{clue_id}/redactions/texts", json=redact, headers=auth(late)))


async def test_hotline_additions_open_only_for_holders(harness: Harness) -> None:
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"])
    _, operator = await harness.add_staff(unique("接线员"), ["operator"])
    made = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    assert made.status_code == 201, made.text
    clue_id = made.json()["clue_id"]
    _, late = await harness.add_staff(unique("新督办"), ["supervisor"])
    additions = await harness.client.get(f"/api/v1/clues/{clue_id}/additions", headers=auth(holder))
    assert additions.status_code == 200 and additions.json()[0]["kind"] == "call_record"
    _refused(await harness.client.get(f"/api/v1/clues/{clue_id}/additions", headers=auth(late)))
    async with harness.runtime.session_factory() as session:
        row = await session.scalar(select(ClueAddition).where(ClueAddition.clue_id == clue_id))
    assert row is not None
    _not_for_the_case_key(harness, row.content, f"clue_additions/{row.id}/content")


async def test_a_clue_sealed_before_compartments_keeps_the_case_key(harness: Harness) -> None:
    client = harness.client
    response = await post_report(client, {"text": unique("镇长侄子承包工程")})
    code = receipt_from(response.text)
    clue_id = await clue_of_receipt(harness, code)
    async with harness.runtime.session_factory() as session:  # as registered before compartments
        await session.execute(delete(ClueSealed).where(ClueSealed.clue_id == clue_id))
        await session.commit()
    page = await open_status(client, code)
    reply = await post_reply(client, page.text, FOLLOW_UP, files=[("转账.txt", REPLY_FILE)])
    assert reply.status_code == 200, reply.text
    _, later = await harness.add_staff(unique("督办"), ["supervisor"])  # the case key: any supervisor
    thread = await client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(later))
    assert thread.status_code == 200 and thread.json()[0]["text"] == FOLLOW_UP
    async with harness.runtime.session_factory() as session:
        message = await session.scalar(select(Message).where(Message.clue_id == clue_id))
        row = await session.scalar(select(Attachment).where(Attachment.clue_id == clue_id))
    assert message is not None and row is not None
    assert harness.runtime.keys.open(message.body, f"messages/{message.id}/body").decode() == FOLLOW_UP
    assert not compartment_keys.sealed_to_clue(row.wrapped_key)
    download = await client.get(f"/api/v1/attachments/{row.id}", headers=auth(later))
    assert download.status_code == 200 and download.content == REPLY_FILE


async def test_a_first_reports_files_are_sealed_to_the_clue_at_registration(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Web form and mail (in the server process and through a worker process): stored before the clue
    exists, each cleaned file's key is held in memory and sealed to the clue's own key at registration."""
    from service.mail import ingest as mail_ingest
    from tests.helpers.mail import PNG, mail, row_for

    _, holder = await harness.add_staff(unique("督办"), ["supervisor"])
    response = await post_report(
        harness.client, {"text": unique("区住建局科长吃拿卡要")}, files=[("转账.txt", REPLY_FILE)]
    )
    clue_ids = [await clue_of_receipt(harness, receipt_from(response.text))]
    for text, via_worker in (("派出所民警收红包", False), ("法官收受财物", True)):
        if via_worker:
            monkeypatch.setattr(mail_ingest, "POOL_BYTES", 0)  # the worker process's path
        raw = mail(unique(text), attachment=PNG)
        assert await mail_ingest.MailIngest(harness.runtime)(raw) == "clue"
        received = await row_for(harness, raw)
        assert received is not None and received.clue_id
        clue_ids.append(received.clue_id)
    _, late = await harness.add_staff(unique("新督办"), ["supervisor"])
    for clue_id in clue_ids:
        async with harness.runtime.session_factory() as session:
            (row,) = await session.scalars(select(Attachment).where(Attachment.clue_id == clue_id))
        _not_for_the_case_key(harness, row.wrapped_key, f"attachment/{row.blob_id}")
        download = await harness.client.get(f"/api/v1/attachments/{row.id}", headers=auth(holder))
        assert download.status_code == 200, download.text
        _refused(await harness.client.get(f"/api/v1/attachments/{row.id}", headers=auth(late)))
