"""Issue 19's test: a copy of the staff server's files and the database, but no unlocked session, reads no
report — for clues registered since compartments, on both databases.

Clues come in through the real channels (the web form with a file, mail over real SMTP with a file, a
reporter's follow-up with a file from the status page), staff write about them (a note, a redaction with
its reason). The thief then takes what a staff server holds: every private key file of the data directory
that is not a custodian's (the case key ring; in the test data dir the identity and escrow private keys
sit under ``custody/``, in production they exist only as custodians' shares), the lookup secret, and a
copy of every table. No session cookie or token. Every LargeBinary column of every table is gone through
generically: whatever parses as an envelope must name a key the thief does not hold, or else open to none
of the report's words; the report's distinctive strings are in no column and no blob in plaintext.
Also the row "a thief of one unlocked session reads only what that person could read"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.attachments.models import Attachment
from service.compartments import service as compartments
from service.mail.ingest import MailIngest
from service.mail.receiver import serve_receiver
from service.messages.models import Message
from service.platform.crypto.envelope import Envelope
from service.platform.errors import Forbidden
from tests.helpers.app import Harness, auth, unique
from tests.helpers.mail import TIP, mail, row_for, send
from tests.helpers.registry import seal_case_copy
from tests.helpers.thief import every_row, thiefs_ring, what_opens
from tests.helpers.web import clue_of_receipt, open_status, post_reply, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _clues(harness: Harness, words: dict[str, str]) -> tuple[list[str], str]:
    """Registers clues through the channels; returns their ids and the supervisor token that holds them."""
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"])  # there at registration: a wrap
    client = harness.client
    response = await post_report(
        client,
        {"text": words["web"], "accused_name": words["accused"]},
        files=[("证据.txt", words["web_file"].encode())],
    )
    code = receipt_from(response.text)
    web = await clue_of_receipt(harness, code)
    page = await open_status(client, code)
    reply = await post_reply(
        client, page.text, words["follow_up"], files=[("补充.txt", words["reply_file"].encode())]
    )
    assert reply.status_code == 200, reply.text

    running = await serve_receiver("127.0.0.1", 0, MailIngest(harness.runtime), [TIP], 4 * 1024 * 1024)
    try:
        raw = mail(words["mail"], attachment=words["mail_file"].encode())
        assert (await send(running.port, raw))[0] == 250
    finally:
        await running.stop()
    received = await row_for(harness, raw)
    assert received is not None and received.clue_id
    mailed = received.clue_id

    api = f"/api/v1/clues/{web}"
    note = await client.post(f"{api}/notes", json={"text": words["note"]}, headers=auth(holder))
    assert note.status_code == 201, note.text
    async with harness.runtime.session_factory() as session:
        follow_up = await session.scalar(
            select(Message).where(Message.clue_id == web, Message.author_id.is_(None))
        )
    assert follow_up is not None
    redaction = {
        "target": "message",
        "target_id": follow_up.id,
        "base_version": 0,
        "quotes": [words["follow_up"][:4]],
        "reason": words["redaction_reason"],
    }
    made = await client.post(f"{api}/redactions/texts", json=redaction, headers=auth(holder))
    assert made.status_code == 201, made.text
    # The holder reads all of it: what the thief misses is there.
    read = await client.get(api, headers=auth(holder))
    assert read.status_code == 200 and words["web"] in read.json()["text"]
    return [web, mailed], holder


async def test_a_copy_of_the_staff_servers_files_and_the_database_reads_no_report(harness: Harness) -> None:
    tag = unique("")
    words = {
        "web": f"区住建局科长甄某某收受开发商购物卡{tag}",
        "accused": f"甄某某{tag}",
        "web_file": f"转账凭证原件{tag}",
        "follow_up": f"补充他上个月又收两万{tag}",
        "reply_file": f"聊天记录截图{tag}",
        "mail": f"派出所民警柏某收赌场红包{tag}",
        "mail_file": f"赌场账本一页{tag}",
        "note": f"已约谈知情人{tag}",
        "redaction_reason": f"金额另案处理{tag}",
    }
    clue_ids, holder = await _clues(harness, words)
    ring = thiefs_ring(harness)
    thief_keys = {pair.public.key_id for pair in ring._private.values()}
    secret = [w.encode() for w in words.values()] + [tag.encode()]
    opened, envelopes = what_opens(await every_row(harness), ring, secret, set(clue_ids))
    assert envelopes > 0
    assert opened == [], f"the staff server's keys open {opened}"
    # The scan does find what the case key opens: a clue registered before compartments (its fields as
    # case-key envelopes on the row) is read by the same thief.
    control = unique("区水务局科员收受回扣")
    response = await post_report(harness.client, {"text": control})
    older = await clue_of_receipt(harness, receipt_from(response.text))
    await seal_case_copy(harness, older)
    found, _ = what_opens(await every_row(harness), ring, [control.encode()], {older})
    assert {"clues.content", "clues.accused", "clues.classification"} <= set(found)

    # Nor the blob store: every file under the data directory, ciphertext only.
    for path in harness.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s in data for s in secret), f"plaintext in {path.relative_to(harness.data_dir)}"

    # The service's own paths with the thief's keys and no session: refused.
    async with harness.runtime.session_factory() as session:
        for clue_id in clue_ids:
            with pytest.raises(Forbidden):
                await session.run_sync(
                    lambda s, c=clue_id: compartments.open_clue(s, clue_id=c, unlocked=None)
                )
    for clue_id in clue_ids:
        assert (await harness.client.get(f"/api/v1/clues/{clue_id}")).status_code == 401
    # Every file key of these clues names a key the thief does not hold.
    async with harness.runtime.session_factory() as session:
        keys_of_files = list(
            await session.scalars(select(Attachment.wrapped_key).where(Attachment.clue_id.in_(clue_ids)))
        )
    assert len(keys_of_files) == 3
    assert all(Envelope.from_bytes(k).key_id not in thief_keys for k in keys_of_files)


async def test_a_thief_of_one_unlocked_session_reads_only_what_that_person_could(harness: Harness) -> None:
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"])
    response = await post_report(harness.client, {"text": unique("区交通局副局长收受工程回扣")})
    clue_id = await clue_of_receipt(harness, receipt_from(response.text))
    _, other = await harness.add_staff(unique("他人督办"), ["supervisor"])  # joined later: no wrap
    assert (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(holder))).status_code == 200
    refused = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(other))
    assert refused.status_code == 403, refused.text
    messages = await harness.client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(other))
    assert messages.status_code == 403
