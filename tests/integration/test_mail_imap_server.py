"""The real aioimaplib adapter against an IMAP4rev1 server running in the test (``tests/imap_server.py``):
new mail is fetched without being marked read, ingested, and flagged and expunged (or moved) only after the
commit; a crash between the commit and the mark fetches the message again and changes nothing; a failed
ingest leaves the message untouched; the poller loop does it all on its own."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

from pydantic import SecretStr
from sqlalchemy import func, select

from service.mail.imap import AioImapClient, poll_once, running_poller
from service.mail.ingest import DUPLICATE, MailIngest, dedupe_key
from service.mail.parse import parse_message
from service.mail.receiver import TemporarilyUnavailable
from service.mailbox.models import ReceivedMail
from tests.helpers.imap_server import ImapServer
from tests.helpers.mail import raw


def imap_settings(harness, server: ImapServer, **overrides: object):  # type: ignore[no-untyped-def]
    return harness.runtime.settings.model_copy(
        update={
            "imap_host": "127.0.0.1",
            "imap_port": server.port,
            "imap_tls": False,
            "imap_username": "tips",
            "imap_password": SecretStr("s3cret pass"),
            "imap_mailbox": "INBOX",
            "imap_done_mailbox": "",
            **overrides,
        }
    )


async def connected(harness, server: ImapServer, **overrides: object) -> AioImapClient:  # type: ignore[no-untyped-def]
    client = AioImapClient(SimpleNamespace(settings=imap_settings(harness, server, **overrides)))  # type: ignore[arg-type]
    await client.connect()
    return client


async def rows_for(harness, message: bytes) -> list[ReceivedMail]:  # type: ignore[no-untyped-def]
    key = dedupe_key(harness.runtime, parse_message(message))
    async with harness.runtime.session_factory() as session:
        return list((await session.scalars(select(ReceivedMail).where(ReceivedMail.dedupe_key == key))).all())


class Crash(BaseException):
    """The poller process dying: not an ``Exception``, so nothing on the way catches it."""


async def test_new_mail_is_fetched_ingested_and_marked_only_after_commit(harness) -> None:  # type: ignore[no-untyped-def]
    async with ImapServer("tips", "s3cret pass") as server:
        first, second, old = raw("派出所民警收钱放人。"), raw("法官收受律师财物。"), raw("已读的旧邮件。")
        server.inbox.append(first)
        server.inbox.append(second)
        server.inbox.append(old, {"\\Seen"})
        real = MailIngest(harness.runtime, via="imap")

        async def ingest(data: bytes) -> str:
            outcome = await real(data)
            server.events.append(f"committed {outcome}")
            return outcome

        client = await connected(harness, server)
        try:
            assert await client.uid_search_unseen() == ["1", "2"]
            assert await client.fetch("1") == first  # byte for byte
            assert server.inbox.messages[0].flags == set()  # BODY.PEEK[]: not marked read by fetching
            assert await poll_once(client, ingest) == 2
        finally:
            await client.close()

        assert [m.raw for m in server.inbox.messages] == [old]  # the two new ones: flagged and expunged
        marks = [e for e in server.events if e.startswith(("committed", "UID STORE", "UID EXPUNGE"))]
        assert marks == [
            "committed clue",
            "UID STORE 1 +FLAGS (\\Seen \\Deleted)",
            "UID EXPUNGE 1",
            "committed clue",
            "UID STORE 2 +FLAGS (\\Seen \\Deleted)",
            "UID EXPUNGE 2",
        ]
        assert all(e.startswith("UID FETCH") is False or "BODY.PEEK[]" in e for e in server.events)
        for message in (first, second):
            (row,) = await rows_for(harness, message)
            assert row.outcome == "clue" and row.via == "imap" and row.clue_id
        assert await rows_for(harness, old) == []


async def test_crash_between_commit_and_mark_is_idempotent(harness) -> None:  # type: ignore[no-untyped-def]
    async with ImapServer("tips", "s3cret pass") as server:
        message = raw("看守所管教收钱，给在押人员传递物品。")
        server.inbox.append(message)
        real = MailIngest(harness.runtime, via="imap")

        async def commit_then_die(data: bytes) -> str:
            await real(data)
            raise Crash

        client = await connected(harness, server)
        try:
            await poll_once(client, commit_then_die)
        except Crash:
            pass
        finally:
            client.client.protocol.transport.close()  # the process is gone: no LOGOUT
        assert [m.raw for m in server.inbox.messages] == [message]  # committed, but never marked
        assert not any(e.startswith("UID STORE") for e in server.events)

        outcomes: list[str] = []

        async def ingest(data: bytes) -> str:
            outcomes.append(await real(data))
            return outcomes[-1]

        client = await connected(harness, server)  # the restarted poller
        try:
            assert await poll_once(client, ingest) == 1
        finally:
            await client.close()
        assert outcomes == [DUPLICATE] and server.inbox.messages == []
        assert len(await rows_for(harness, message)) == 1  # one row, one clue


async def test_failed_ingest_leaves_the_message_untouched(harness) -> None:  # type: ignore[no-untyped-def]
    async with ImapServer("tips", "s3cret pass") as server:
        message = raw("检察官压案不办。")
        server.inbox.append(message)

        async def unavailable(data: bytes) -> str:
            raise TemporarilyUnavailable("OperationalError")

        client = await connected(harness, server)
        try:
            assert await poll_once(client, unavailable) == 0
        finally:
            await client.close()
        assert server.inbox.messages[0].flags == set()
        assert not any(
            e.startswith(("UID STORE", "UID MOVE", "EXPUNGE", "UID EXPUNGE")) for e in server.events
        )
        assert await rows_for(harness, message) == []

        client = await connected(harness, server)  # next round, database back
        try:
            assert await poll_once(client, MailIngest(harness.runtime, via="imap")) == 1
        finally:
            await client.close()
        assert server.inbox.messages == [] and len(await rows_for(harness, message)) == 1


async def test_poller_loop_moves_processed_mail_and_survives_a_refused_login(harness) -> None:  # type: ignore[no-untyped-def]
    async with ImapServer("tips", "s3cret pass") as server:
        message = raw("监狱民警收钱办理减刑。")
        server.inbox.append(message)

        wrong = dataclasses.replace(
            harness.runtime,
            settings=imap_settings(harness, server, imap_password=SecretStr("wrong"), imap_poll_seconds=0.05),
        )
        async with running_poller(wrong):
            for _ in range(100):
                if server.connections >= 2:
                    break
                await asyncio.sleep(0.02)
        assert server.connections >= 2 and len(server.inbox.messages) == 1  # refused, retried, untouched

        runtime = dataclasses.replace(
            harness.runtime,
            settings=imap_settings(harness, server, imap_done_mailbox="Processed", imap_poll_seconds=0.05),
        )
        try:
            async with running_poller(runtime):
                for _ in range(250):
                    if not server.inbox.messages:
                        break
                    await asyncio.sleep(0.02)
        finally:
            for rt in (wrong, runtime):
                if "intake" in rt.__dict__:  # a copied runtime's own intake entry
                    await rt.intake.close()
        assert server.inbox.messages == []
        assert [m.raw for m in server.mailboxes["Processed"].messages] == [message]
        assert any(e.startswith("UID MOVE") for e in server.events)
        async with harness.runtime.session_factory() as session:
            key = dedupe_key(harness.runtime, parse_message(message))
            count = await session.scalar(
                select(func.count()).select_from(ReceivedMail).where(ReceivedMail.dedupe_key == key)
            )
        assert count == 1
