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
Also the row "a thief of one unlocked session reads only what that person could read", and the staff server
that holds no case private key at all (both suites): it serves the staff flow, its thief reads nothing, and a
clue registered before compartments answers a clear 503 there."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from service.attachments.models import Attachment
from service.auth import service as auth_service
from service.compartments import service as compartments
from service.compartments.items import PREDATES_COMPARTMENTS
from service.custody import service as custody
from service.mail.ingest import MailIngest
from service.mail.receiver import serve_receiver
from service.messages.models import Message
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import generate_key_pair, write_key_pair, write_public_key
from service.platform.crypto.national import NATIONAL_SUITE
from service.platform.errors import Forbidden
from service.registry import recusal
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, running_app, unique
from tests.helpers.mail import TIP, mail, row_for, send
from tests.helpers.registry import make_old, make_world, seal_case_copy, step
from tests.helpers.staff_web import log_in, make_web_staff
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


def _keys_without_the_case_private_key(data_dir: Path, suite: str) -> None:
    """What a custodial host hands a staff server: the public halves only. The identity private key sits
    under ``custody/`` for the test to play the custodian (in production: custodians' shares)."""
    tag = ".national" if suite == "national" else ""
    case, identity = generate_key_pair("case", suite), generate_key_pair("identity", suite)
    write_public_key(data_dir / "keys" / f"case{tag}.public.json", case.public)
    write_public_key(data_dir / "keys" / f"identity{tag}.public.json", identity.public)
    write_key_pair(data_dir / "custody" / f"identity{tag}.private.json", identity)


@pytest.mark.parametrize("suite", ["international", "national"])
async def test_a_staff_server_without_the_case_key_serves_staff_and_its_thief_reads_nothing(
    suite: str, fresh_database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    _keys_without_the_case_private_key(data_dir, suite)
    async with running_app(
        data_dir, fresh_database_url, database_auto_upgrade=True, crypto_suite=suite
    ) as harness:
        assert not list(data_dir.rglob("case*.private.json"))
        assert not harness.runtime.keys.can_open("case") and "staff" in harness.runtime.roles
        await _staff_flow_without_the_case_key(harness, suite)


async def _staff_flow_without_the_case_key(harness: Harness, suite: str) -> None:
    tag = unique("")
    words = {
        "report": f"派出所民警收了对方的红包{tag}",
        "message": f"请补充收钱的时间地点{tag}",
        "reason": f"实名举报人需当面核实{tag}",
        "mail": f"我正在休假回来后回复您{tag}",
    }
    client = harness.client
    world = await make_world(harness)
    holder = await make_web_staff(harness, ["supervisor"])  # there at registration: a wrap
    custodian_name = unique("保管人")
    await harness.add_staff(custodian_name, ["custodian"])
    response = await client.post(
        "/api/v1/tips",
        json={
            "text": words["report"],
            "accused": {"name": unique("张"), "unit": world.accused_unit_name, "position": "民警"},
            "anonymous": False,
            "submitter": {"name": "李四", "phone": "13800138000"},
        },
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue = (await session.scalars(select(Clue))).one()  # a database of its own
    clue_id = clue.id
    triaged = await step(harness, clue_id, world.supervisor[1], "triage")  # routed: assigned, key wrapped
    assert triaged.status_code == 201, triaged.text

    # The assignee opens the clue and writes and reads its messages.
    investigator = world.investigator[1]
    api = f"/api/v1/clues/{clue_id}"
    read = await client.get(api, headers=auth(investigator))
    assert read.status_code == 200 and words["report"] in read.json()["text"]
    sent = await client.post(f"{api}/messages", json={"text": words["message"]}, headers=auth(investigator))
    assert sent.status_code == 201, sent.text
    thread = await client.get(f"{api}/messages", headers=auth(investigator))
    assert thread.status_code == 200 and words["message"] in thread.text
    # A supervisor logs in to the staff site and opens it there.
    async with log_in(harness, holder) as browser:
        page = await browser.get(f"/staff/registry/clues/{clue_id}")
        assert page.status_code == 200 and words["report"] in page.text

    # A custody request: its reason sealed to the clue's key, read by the approver who holds the clue.
    keys = harness.runtime.keys
    async with harness.runtime.session_factory() as session:
        row = await custody.request_release(
            session,
            clue_id=clue_id,
            requester=custodian_name,
            reason=words["reason"],
            kind="identity",
            keys=keys,
            words_key=harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL),
        )
        await custody.decide(
            session,
            request_id=row.id,
            approver=holder.name,
            approve=True,
            keys=keys,
            words_key=harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL),
        )
        viewer = await auth_service.authenticate(session, holder.token)
        views = await custody.list_requests(session, keys=keys, viewer=viewer)
        await session.commit()
    assert next(v.reason for v in views if v.request.id == row.id) == words["reason"]

    # Filtered mail arrives and is sealed to the identity key.
    raw = mail(words["mail"], subject="自动回复", headers="Auto-Submitted: auto-replied\r\n")
    assert await MailIngest(harness.runtime)(raw) == "filtered"
    received = await row_for(harness, raw)
    assert received is not None and received.sealed is not None
    assert Envelope.from_bytes(received.sealed).key_id == keys.identity_public.key_id

    # The thief of this server's files and database: no private key file at all, and no word in the clear.
    ring = thiefs_ring(harness)
    assert not ring.key_ids("case")
    secret = [w.encode() for w in words.values()] + [tag.encode()]
    opened, envelopes = what_opens(await every_row(harness), ring, secret, {clue_id})
    assert envelopes > 0 and opened == []
    for path in harness.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s in data for s in secret), f"plaintext in {path.relative_to(harness.data_dir)}"
    suites = {
        Envelope.from_bytes(v).suite
        for _, _, r in await every_row(harness)
        for v in r.values()
        if _is_envelope(v)
    }
    assert (NATIONAL_SUITE in suites) == (suite == "national")

    # Two transfer requests pending: one on this clue (made old below), one on a second, compartmented clue.
    second = await client.post(
        "/api/v1/tips",
        json={
            "text": f"乡镇干部虚报冒领补贴{tag}",
            "accused": {"name": unique("赵"), "unit": world.accused_unit_name, "position": "民警"},
            "anonymous": True,
        },
    )
    assert second.status_code == 201, second.text
    async with harness.runtime.session_factory() as session:
        (other_id,) = set(await session.scalars(select(Clue.id))) - {clue_id}
    assert (await step(harness, other_id, world.supervisor[1], "triage")).status_code == 201
    transfer_reasons = {clue_id: f"涉及本单位领导请求移交{tag}", other_id: f"应由属地纪委办理{tag}"}
    for target, text in transfer_reasons.items():
        asked = await client.post(
            f"/api/v1/clues/{target}/transfer-requests",
            json={"to_unit_id": world.other_unit, "reason": text},
            headers=auth(investigator),
        )
        assert asked.status_code == 201, asked.text

    # A clue registered before compartments (case-key envelopes, not adopted): a clear 503 naming the fix,
    # on the API and the staff site, never a 500; its request's reason is listed as such.
    await make_old(harness, clue_id)
    for token in (investigator, holder.token):
        old = await client.get(api, headers=auth(token))
        assert old.status_code == 503, old.text
        assert "tipline compartments adopt" in old.json()["error"]["message_en"]
        assert "分隔加密之前" in old.json()["error"]["message"]
    async with log_in(harness, holder, offset_steps=1) as browser:  # a TOTP code counts once
        page = await browser.get(f"/staff/registry/clues/{clue_id}")
        assert page.status_code == 503 and "tipline compartments adopt" in page.text
        # The list of pending transfer requests: the old clue's row says so, the other reads as ever.
        listed = await browser.get("/staff/registry/transfer-requests")
    assert listed.status_code == 200, listed.text
    assert all(marker in listed.text for marker in PREDATES_COMPARTMENTS)
    assert transfer_reasons[other_id] in listed.text and transfer_reasons[clue_id] not in listed.text
    async with harness.runtime.session_factory() as session:
        viewer = await auth_service.authenticate(session, holder.token)
        views = await custody.list_requests(session, keys=keys, viewer=viewer)
    (old_view,) = [v for v in views if v.request.id == row.id]
    assert old_view.reason is None and old_view.sealed == PREDATES_COMPARTMENTS


def _is_envelope(value: object) -> bool:
    if not isinstance(value, bytes) or not value:
        return False
    try:
        Envelope.from_bytes(value)
    except EnvelopeError:
        return False
    return True
