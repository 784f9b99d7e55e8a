"""Coarse time for anonymous reports: what is stored and shown about when an anonymous report arrived says no
more than the hour — its times, its row ids, its receipt and reporter key, its audit entries, what the API and
the ledger show — and the reports of one group commit are registered in no particular order. A real-name
report keeps its exact time. The same rule holds for an anonymous reporter's follow-up messages and for
received mail; staff-written rows keep exact times."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from service.attachments.models import Attachment
from service.audit.models import AuditEntry
from service.intake import service as intake_service
from service.intake.models import Receipt
from service.messages.models import FROM_REPORTER, TO_REPORTER, Message, ReporterKey
from service.platform.timeutil import as_utc, hour_floor, utcnow
from service.registry.models import Clue
from tests.helpers.app import auth, unique

HOUR_MS = 3_600_000


def _on_the_hour(moment: datetime) -> bool:
    return as_utc(moment).minute == 0 and moment.second == 0 and moment.microsecond == 0


def _id_millis(value: str) -> int:
    return uuid.UUID(value).int >> 80


async def _submit(harness, anonymous: bool) -> str:  # type: ignore[no-untyped-def]
    body = {"text": "派出所民警收了红包，案子压着不立。", "anonymous": anonymous}
    if not anonymous:
        body["submitter"] = {"name": "王五", "phone": "13900139000"}
    response = await harness.client.post("/api/v1/tips", json=body)
    assert response.status_code == 201, response.text
    number = response.json()["registry_number"]
    async with harness.runtime.session_factory() as session:
        return await session.scalar(select(Clue.id).where(Clue.registry_number == number))


async def test_an_anonymous_report_keeps_only_the_hour(harness) -> None:  # type: ignore[no-untyped-def]
    before = utcnow()
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"])  # there when it is registered
    clue_id = await _submit(harness, anonymous=True)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        receipt = await session.scalar(select(Receipt).where(Receipt.clue_id == clue_id))
        reporter_key = await session.get(ReporterKey, clue_id)
        entries = (await session.execute(select(AuditEntry).where(AuditEntry.object_id == clue_id))).scalars()
        registered = [e for e in entries if e.action == "clue.registered"]
    assert clue is not None and receipt is not None and reporter_key is not None
    assert _on_the_hour(clue.received_at) and _on_the_hour(clue.registered_at)
    assert as_utc(clue.received_at) <= before < as_utc(clue.received_at) + timedelta(hours=1)
    assert _on_the_hour(receipt.created_at) and _on_the_hour(reporter_key.created_at)
    for row_id in (clue.id, receipt.id):
        assert uuid.UUID(row_id).version == 7 and _id_millis(row_id) % HOUR_MS == 0
    assert registered and all(e.at.endswith(":00:00.000000Z") for e in registered)

    # What staff see: the API and the ledger show the hour.
    shown = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(supervisor))).json()
    assert _on_the_hour(datetime.fromisoformat(shown["received_at"]))
    ledger = await harness.client.get("/api/v1/ledger.csv", headers=auth(supervisor))
    rows = list(csv.reader(io.StringIO(ledger.text.lstrip("\ufeff"))))
    mine = [row for row in rows if clue.registry_number in row]
    assert mine and any(cell.endswith(":00") and len(cell) == 16 for cell in mine[0])  # "YYYY-MM-DD HH:00"


async def test_a_real_name_report_keeps_its_exact_time(harness) -> None:  # type: ignore[no-untyped-def]
    before = utcnow()
    clue_id = await _submit(harness, anonymous=False)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
    assert clue is not None
    assert abs(as_utc(clue.received_at) - before) < timedelta(seconds=30)
    assert abs(_id_millis(clue_id) - int(before.timestamp() * 1000)) < 30_000


async def test_one_batch_is_registered_in_no_particular_order(harness) -> None:  # type: ignore[no-untyped-def]
    """Registry numbers and audit entries of one registration batch do not follow the order the reports
    arrived in; each reporter still gets their own clue back."""
    runtime = harness.runtime
    prepared = [
        intake_service.prepare_tip(
            runtime,
            intake_service.Submission(text=f"第{i}条：法官吃请，案子判得不公。", channel="web"),
            actor="public",
        )
        for i in range(24)
    ]
    async with runtime.session_factory() as session:
        results = await intake_service.register_prepared(session, runtime=runtime, prepared=prepared)
        await session.commit()
    assert [r.clue_id for r in results] == [p.new.id for p in prepared]
    numbers = [int(r.registry_number.rsplit("-", 1)[1]) for r in results]
    assert sorted(numbers) == list(range(min(numbers), min(numbers) + 24))
    assert numbers != sorted(numbers)  # 1 in 24! that a shuffle keeps the order
    async with runtime.session_factory() as session:
        seqs = dict(
            (
                await session.execute(
                    select(AuditEntry.object_id, AuditEntry.id).where(
                        AuditEntry.action == "clue.registered",
                        AuditEntry.object_id.in_([p.new.id for p in prepared]),
                    )
                )
            ).all()
        )
    order = [seqs[p.new.id] for p in prepared]
    assert order != sorted(order)

    # The group commit: the channels' own writes (``also``) of one batch run in no particular order.
    called: list[int] = []

    def hook(index: int):  # type: ignore[no-untyped-def]
        async def also(session, submitted):  # type: ignore[no-untyped-def]
            called.append(index)
            return []

        return also

    more = [
        intake_service.prepare_tip(
            runtime,
            intake_service.Submission(text=f"第{i}条：看守所管教收钱。", channel="web"),
            actor="public",
        )
        for i in range(24)
    ]
    await asyncio.gather(*(runtime.intake.register(p, also=hook(i)) for i, p in enumerate(more)))
    assert sorted(called) == list(range(24))
    assert called != list(range(24))


async def _tip(harness, anonymous: bool) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    body = {"text": "派出所民警收了红包，案子压着不立。", "anonymous": anonymous}
    if not anonymous:
        body["submitter"] = {"name": "王五", "phone": "13900139000"}
    response = await harness.client.post("/api/v1/tips", json=body)
    assert response.status_code == 201, response.text
    number = response.json()["registry_number"]
    async with harness.runtime.session_factory() as session:
        clue_id = await session.scalar(select(Clue.id).where(Clue.registry_number == number))
    return clue_id, response.json()["receipt"]


async def _reporter_says(harness, code: str, text: str) -> None:  # type: ignore[no-untyped-def]
    sent = await harness.client.post(
        "/api/v1/receipt/messages", json={"text": text}, headers={"X-Receipt-Code": code}
    )
    assert sent.status_code == 201, sent.text


async def test_an_anonymous_reporters_follow_ups_keep_only_the_hour(harness) -> None:  # type: ignore[no-untyped-def]
    """Follow-up messages of an anonymous reporter (and their audit entries) keep the hour, as the first
    report does; a reply is never stamped before the staff message it answers, so the thread keeps its
    order; staff messages keep their exact time."""
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"])  # before the clue: holds its key
    clue_id, code = await _tip(harness, anonymous=True)
    await _reporter_says(harness, code, "补充一下：是上个月的事。")
    asked = await harness.client.post(
        f"/api/v1/clues/{clue_id}/messages", json={"text": "请补充具体地点。"}, headers=auth(supervisor)
    )
    assert asked.status_code == 201, asked.text
    await _reporter_says(harness, code, "在他办公室。")
    async with harness.runtime.session_factory() as session:
        messages = list(
            await session.scalars(
                select(Message).where(Message.clue_id == clue_id).order_by(Message.created_at)
            )
        )
        received = list(
            await session.scalars(
                select(AuditEntry.at).where(
                    AuditEntry.object_id == clue_id, AuditEntry.action == "message.received"
                )
            )
        )
    first, question, answer = messages
    assert [m.direction for m in messages] == [FROM_REPORTER, TO_REPORTER, FROM_REPORTER]
    assert _on_the_hour(first.created_at) and _id_millis(first.id) % HOUR_MS == 0
    assert not _on_the_hour(question.created_at)  # staff-written: exact (1 in 3.6e9 to be on the hour)
    # The answer: the hour, or just after the question when that came later in the same hour.
    stamp = as_utc(answer.created_at)
    assert stamp == max(hour_floor(stamp), as_utc(question.created_at) + timedelta(microseconds=1))
    assert _id_millis(answer.id) % HOUR_MS == 0
    assert len(received) == 2 and all(at.endswith(":00:00.000000Z") for at in received)
    thread = await harness.client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(supervisor))
    assert [m["text"] for m in thread.json()][1:] == ["请补充具体地点。", "在他办公室。"]


async def test_a_real_name_reporters_follow_up_keeps_its_exact_time(harness) -> None:  # type: ignore[no-untyped-def]
    clue_id, code = await _tip(harness, anonymous=False)
    before = utcnow()
    await _reporter_says(harness, code, "补充一下：是上个月的事。")
    async with harness.runtime.session_factory() as session:
        (message,) = (await session.scalars(select(Message).where(Message.clue_id == clue_id))).all()
    assert abs(as_utc(message.created_at) - before) < timedelta(seconds=30)
    assert not _on_the_hour(message.created_at)


async def test_received_mail_keeps_only_the_hour(harness) -> None:  # type: ignore[no-untyped-def]
    """The received-mail row, its attachment rows and a filtered mail's expiry keep the hour."""
    from service.mail.ingest import MailIngest
    from tests.helpers.mail import PNG, mail, row_for

    report = mail(unique("举报某局局长收钱"), attachment=PNG)
    auto_reply = mail("我正在休假。", subject="自动回复", headers="Auto-Submitted: auto-replied\r\n")
    assert await MailIngest(harness.runtime)(report) == "clue"
    assert await MailIngest(harness.runtime)(auto_reply) == "filtered"
    row, filtered = await row_for(harness, report), await row_for(harness, auto_reply)
    assert row is not None and filtered is not None and filtered.expires_at is not None
    for stored in (row, filtered):
        assert _on_the_hour(stored.received_at) and _id_millis(stored.id) % HOUR_MS == 0
    assert _on_the_hour(filtered.expires_at)
    async with harness.runtime.session_factory() as session:
        (attachment,) = (
            await session.scalars(select(Attachment).where(Attachment.clue_id == row.clue_id))
        ).all()
    assert _on_the_hour(attachment.created_at) and _id_millis(attachment.id) % HOUR_MS == 0
