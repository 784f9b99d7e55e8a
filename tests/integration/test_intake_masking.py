"""Every piece of reporter-written text reaches staff masked, whatever the channel and however late it
arrives: the report, a caller's call-back instructions, the operator's record of the call, what a caller
adds when phoning again, a caller's correction, a reporter's follow-up message, filtered mail. The
reporter's own copies keep their words; the originals are identity details (identity key), released only
by custodians. On SQLite and PostgreSQL, through HTTP where a channel has it."""

from __future__ import annotations

import json

from sqlalchemy import select

from service.app.runtime import key_paths
from service.audit.service import PUBLIC_ACTOR
from service.auth import service as auth_service
from service.intake import assisted as hotline_service
from service.intake import service as intake_service
from service.mail.ingest import MailIngest
from service.mailbox.models import sealed_binding
from service.messages.models import Message
from service.platform.crypto.keys import read_key_pair
from service.registry.additions import ClueAddition
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import call_body, caller_number
from tests.helpers.mail import row_for


def id_number(first17: str) -> str:
    """A valid mainland ID number (GB 11643 check digit), so the detector takes it as one."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


PHONE = caller_number()
ID_NUMBER = id_number("44010619850312" + "047")


def assert_masked(text: str) -> None:
    assert PHONE not in text and ID_NUMBER not in text, text
    assert "［手机号］" in text or "［身份证号］" in text, text


async def _call(harness: Harness, **overrides: object) -> tuple[str, str, str]:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    said = {
        "summary": f"来电人反映看守所民警收钱通风报信，来电人身份证{ID_NUMBER}。",
        "caller_words": f"你们打我这个{PHONE}就行。",
        "callback_how": f"晚上打{PHONE}，别留言",
    }
    body = call_body(**{**said, **overrides})
    made = await harness.client.post("/api/v1/hotline/calls", json=body, headers=auth(operator))
    assert made.status_code == 201, made.text
    return made.json()["clue_id"], made.json()["receipt"].replace(" ", ""), operator


async def test_a_call_reaches_staff_masked_and_the_caller_reads_it_back_as_said(harness: Harness) -> None:
    # Before the call: a clue's key is wrapped to the supervisors there when it is registered (compartments).
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    clue_id, code, operator = await _call(harness)

    clue = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(supervisor))).json()
    assert_masked(clue["text"])
    assert_masked(clue["notes"]["callback_how"])
    assert clue["notes"]["callback_how"].endswith("别留言")

    async with harness.runtime.session_factory() as session:
        holder = await auth_service.authenticate(session, supervisor)
        staff_view = await hotline_service.list_additions(
            session, clue_id=clue_id, runtime=harness.runtime, actor="test", unlocked=holder.unlocked
        )
        (record,) = staff_view
        for field in ("summary", "caller_words", "callback_how"):
            assert_masked(record.content[field])
        # The caller reads back the operator's record with their code, as they said it.
        (own,) = await hotline_service.operator_record_for_caller(session, clue_id, code=code)
        assert PHONE in own.content["callback_how"] and ID_NUMBER in own.content["summary"]
        row = (
            await session.execute(select(ClueAddition).where(ClueAddition.clue_id == clue_id))
        ).scalar_one()
        assert row.identity is not None  # the originals, under the identity key

    # The caller phones again and adds a number; then corrects the record on the status page.
    addition = {"receipt": code, "text": f"来电人补充：对方的电话是{PHONE}。"}
    added = await harness.client.post("/api/v1/hotline/additions", json=addition, headers=auth(operator))
    assert added.status_code == 201, added.text
    async with harness.runtime.session_factory() as session:
        await hotline_service.record_caller_confirmation(
            session, clue_id, False, f"我的身份证是{ID_NUMBER}，不是别的。", runtime=harness.runtime
        )
        await session.commit()
    async with harness.runtime.session_factory() as session:
        holder = await auth_service.authenticate(session, supervisor)
        views = await hotline_service.list_additions(
            session, clue_id=clue_id, runtime=harness.runtime, actor="test", unlocked=holder.unlocked
        )
        assert [v.kind for v in views] == ["call_record", "operator_addition", "caller_confirmation"]
        assert_masked(views[1].content["text"])
        assert_masked(views[2].content["correction"])
        rows = (await session.execute(select(ClueAddition).where(ClueAddition.clue_id == clue_id))).scalars()
        assert all(r.identity is not None for r in rows)


async def test_text_without_personal_data_is_stored_once(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    clue_id, _, _ = await _call(
        harness, summary="来电人反映民警打牌赌钱。", caller_words=None, callback_how="工作日白天"
    )
    clue = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(supervisor))).json()
    assert clue["text"] == "来电人反映民警打牌赌钱。" and clue["notes"] == {"callback_how": "工作日白天"}
    async with harness.runtime.session_factory() as session:
        row = (
            await session.execute(select(ClueAddition).where(ClueAddition.clue_id == clue_id))
        ).scalar_one()
        assert row.identity is None  # nothing was masked, so there is no original to keep


async def test_a_follow_up_message_reaches_staff_masked(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])  # before the clue: holds its key
    submitted = await harness.runtime.intake.submit(
        intake_service.Submission(text=unique("派出所民警收了红包，案子压着不立。"), channel="web"),
        actor=PUBLIC_ACTOR,
    )
    clue_id, code = submitted.clue_id, submitted.receipt
    words = f"补充一下：我手机{PHONE}，身份证{ID_NUMBER}，有事找我。"
    sent = await harness.client.post(
        "/api/v1/receipt/messages", json={"text": words}, headers={"X-Receipt-Code": code}
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["messages"][-1]["text"] == words  # the reporter sees their own words
    listing = await harness.client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(supervisor))
    (message,) = listing.json()
    assert_masked(message["text"])
    assert message["text"].startswith("补充一下：我手机")
    async with harness.runtime.session_factory() as session:
        row = (await session.execute(select(Message).where(Message.clue_id == clue_id))).scalar_one()
        assert row.identity is not None
    body = await harness.open_item(supervisor, clue_id, row.body, f"messages/{row.id}/body")
    assert PHONE not in body.decode()
    # Staff's own messages are not masked: they are not reporter-written.
    reply = await harness.client.post(
        f"/api/v1/clues/{clue_id}/messages", json={"text": f"请拨打{PHONE}联系我们"}, headers=auth(supervisor)
    )
    assert reply.status_code == 201
    listing = await harness.client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(supervisor))
    assert PHONE in listing.json()[1]["text"]


async def test_letters_and_visits_are_masked_like_web_reports(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    letter = {
        "text": f"尊敬的领导：城关派出所民警收钱不立案。我的电话{PHONE}。",
        "postmark_date": "2026-11-20",
        "anonymous": True,
        "writer": {},
        "accused": {"unit": "城关派出所"},
    }
    visit = {
        "text": f"来访人称法官吃请，来访人身份证号{ID_NUMBER}。",
        "visit_date": "2026-11-21",
        "anonymous": True,
        "visitor": {},
        "received_by": "接待员",
        "accused": {"unit": "区法院"},
    }
    for path, body in (("/api/v1/letters", letter), ("/api/v1/visits", visit)):
        made = await harness.client.post(path, json=body, headers=auth(operator))
        assert made.status_code == 201, made.text
        clue = await harness.client.get(f"/api/v1/clues/{made.json()['clue_id']}", headers=auth(supervisor))
        assert_masked(clue.json()["text"])


async def test_filtered_mail_is_masked_for_staff(harness: Harness) -> None:
    raw = (
        "From: noreply@example.org\r\nTo: jubao@example.gov.cn\r\nSubject: Out of office\r\n"
        "Auto-Submitted: auto-replied\r\nMessage-ID: <" + unique("auto") + "@example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"我在休假，急事请打{PHONE}。\r\n"
    ).encode()
    outcome = await MailIngest(harness.runtime)(raw)
    assert outcome == "filtered"
    row = await row_for(harness, raw)  # by its dedupe key: received mail keeps the hour, "newest" is no test
    assert row is not None and row.sealed is not None
    # Sealed to the identity key like quarantined mail; its holder (a custodian) opens it.
    custodian = harness.runtime.keys.with_private(
        [read_key_pair(key_paths(harness.runtime.settings)["identity_private"])]
    )
    content = json.loads(custodian.open(row.sealed, sealed_binding(row.id)))
    assert_masked(content["body"])
