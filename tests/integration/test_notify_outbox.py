"""Outbound mail through the outbox: the acknowledgement with the receipt code reaches the sender through a
real (throwaway aiosmtpd) relay, sent by the job worker; the sealed address is destroyed once sent; a relay
that is down never blocks intake and is retried with backoff; staff notices are content-free, with a
daily digest for those who prefer it."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from service.intake.models import Receipt
from service.intake.receipts import receipt_hash
from service.jobs.worker import Worker
from service.mail.ingest import MailIngest
from service.mailbox.models import ReceivedMail
from service.notify import service as notify_service
from service.notify.models import OutboxMessage
from service.notify.sender import MemorySender
from service.platform.timeutil import utcnow
from tests.helpers import free_port
from tests.helpers.app import auth, running_app, unique
from tests.helpers.mail import body_of, relay_on

TIP = "jubao@tipline.local"
REPORT = "看守所民警收钱给在押人员传递消息，违规安排会见。"


def tip_mail(sender: str) -> bytes:
    return (
        f"From: 某人 <{sender}>\r\nTo: {TIP}\r\nSubject: 举报\r\nMessage-ID: <{unique('ack')}@example.cn>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{REPORT}\r\n"
    ).encode()


async def outbox_rows(runtime, kind: str) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with runtime.session_factory() as session:
        return list((await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind))).all())


async def test_acknowledgement_carries_the_receipt_and_its_address_is_destroyed(
    tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    async with running_app(
        tmp_path, fresh_database_url, relay_host="127.0.0.1", relay_port=port, relay_starttls=False
    ) as h:
        sender = "reporter.ack.31@example.cn"
        assert await MailIngest(h.runtime)(tip_mail(sender)) == "clue"
        [row] = await outbox_rows(h.runtime, "ack")
        assert row.status == "pending" and row.sealed is not None and sender.encode() not in row.sealed
        with relay_on(port) as relay:
            await Worker(h.runtime).run_once()
        [(recipients, raw)] = relay.messages
        assert recipients == [sender]
        text = body_of(raw)
        code = re.search(r"查询码：(\S[^\n]*)\n", text).group(1).strip()  # type: ignore[union-attr]
        assert "Receipt code" in text and REPORT not in text
        async with h.runtime.session_factory() as session:
            found = await session.scalar(
                select(Receipt).where(
                    Receipt.code_hash == receipt_hash(h.runtime.lookup_key("receipt"), code)
                )
            )
            mail_row = await session.scalar(select(ReceivedMail).where(ReceivedMail.outcome == "clue"))
            sent = await session.get(OutboxMessage, row.id)
        assert found is not None and mail_row is not None and found.clue_id == mail_row.clue_id
        assert sent is not None and sent.status == "sent" and sent.sealed is None  # destroyed

        # Switched off: no acknowledgement is queued.
        h.runtime.settings = h.runtime.settings.model_copy(update={"mail_acknowledge": False})
        assert await MailIngest(h.runtime)(tip_mail("other.31@example.cn")) == "clue"
        assert len(await outbox_rows(h.runtime, "ack")) == 1


async def test_relay_down_never_blocks_intake_and_is_retried_with_backoff(
    tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nothing listens yet
    async with running_app(
        tmp_path, fresh_database_url, relay_host="127.0.0.1", relay_port=port, relay_starttls=False
    ) as h:
        assert await MailIngest(h.runtime)(tip_mail("reporter.retry.8@example.cn")) == "clue"
        worker = Worker(h.runtime)
        await worker.run_once()
        [row] = await outbox_rows(h.runtime, "ack")
        assert row.status == "pending" and row.sealed is not None and row.last_error is None
        await worker.run_once()  # backoff: not due yet, nothing is tried
        with relay_on(port) as relay:
            await worker.run_once(now=utcnow() + timedelta(minutes=5))
        assert len(relay.messages) == 1
        [row] = await outbox_rows(h.runtime, "ack")
        assert row.status == "sent" and row.sealed is None

        # The last attempt gives up and destroys the address.
        assert await MailIngest(h.runtime)(tip_mail("reporter.giveup.8@example.cn")) == "clue"
        pending = [r for r in await outbox_rows(h.runtime, "ack") if r.status == "pending"][0]

        class Broken(MemorySender):
            async def send(self, message):  # type: ignore[no-untyped-def]
                raise ConnectionRefusedError

        async with h.runtime.session_factory() as session:
            outcome = await notify_service.deliver(
                session, runtime=h.runtime, outbox_id=pending.id, sender=Broken(), final_attempt=True
            )
            await session.commit()
        assert outcome == "failed"
        given_up = [r for r in await outbox_rows(h.runtime, "ack") if r.id == pending.id][0]
        assert given_up.sealed is None and given_up.last_error == "ConnectionRefusedError"


async def test_staff_notices_are_content_free_and_digests_fold_them(tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    async with running_app(
        tmp_path,
        fresh_database_url,
        relay_host="127.0.0.1",
        relay_port=port,
        relay_starttls=False,
        mail_acknowledge=False,
    ) as h:
        _, now_token = await h.add_staff(unique("sup"), ["supervisor"])
        _, daily_token = await h.add_staff(unique("sup"), ["supervisor"])
        _, silent_token = await h.add_staff(unique("sup"), ["supervisor"])
        for token, address, mode in (
            (now_token, "now@staff.example", "immediate"),
            (daily_token, "daily@staff.example", "daily"),
            (silent_token, "", "off"),
        ):
            put = await h.client.put(
                "/api/v1/me/notifications", json={"address": address, "mode": mode}, headers=auth(token)
            )
            assert put.status_code == 200, put.text
        bad = await h.client.put(
            "/api/v1/me/notifications", json={"address": "nope", "mode": "daily"}, headers=auth(now_token)
        )
        assert bad.status_code == 422 and bad.json()["error"]["message"]
        assert (await h.client.get("/api/v1/me/notifications", headers=auth(daily_token))).json()[
            "mode"
        ] == "daily"

        for _ in range(2):
            assert await MailIngest(h.runtime)(tip_mail(f"{unique('r')}@example.cn")) == "clue"
        with relay_on(port) as relay:
            await Worker(h.runtime).run_once()
            assert sorted({r[0][0] for r in relay.messages}) == ["now@staff.example"]
            assert len(relay.messages) == 2
            async with h.runtime.session_factory() as session:
                assert await notify_service.build_digests(session) == 1
                await session.commit()
            await Worker(h.runtime).run_once()
        digests = [m for m in relay.messages if m[0] == ["daily@staff.example"]]
        assert len(digests) == 1
        for _, raw in relay.messages:
            text = body_of(raw)
            assert REPORT[:6] not in text and "LG" not in text and "@example.cn" not in text
            assert "/staff" in text
        assert "（2）" in body_of(digests[0][1])
        # The notice links the list of new clues, never one clue: its exact times bound no report's arrival
        # (the clue itself keeps only the hour).
        async with h.runtime.session_factory() as session:
            paths = set((await session.execute(select(OutboxMessage.path))).scalars())
            clue_ids = set((await session.execute(select(ReceivedMail.clue_id))).scalars()) - {None}
        assert {p for p in paths if p.startswith("/")} == {"/staff/registry?status=registered"}  # + a digest
        assert clue_ids and not any(c in p for p in paths for c in clue_ids)
