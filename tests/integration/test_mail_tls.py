"""The mail TLS paths that are on by default, against servers in the test holding a certificate from a
throwaway CA made here: the IMAP poller over TLS (TIPLINE_IMAP_TLS, default true) and the outbound relay's
STARTTLS (TIPLINE_RELAY_STARTTLS, default true). With the CA trusted (TIPLINE_IMAP_TLS_CA_FILE /
TIPLINE_RELAY_TLS_CA_FILE) mail flows; with a certificate nobody trusted the connection is refused with a
clear error before anything is said (no password), and nothing is lost or marked as done."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from service.jobs.models import Job
from service.jobs.worker import Worker
from service.mail.imap import AioImapClient, ImapTlsUntrusted, poll_once, running_poller
from service.mail.ingest import MailIngest, dedupe_key
from service.mail.parse import parse_message
from service.mailbox.models import ReceivedMail
from service.notify import service as notify_service
from service.notify.models import OutboxMessage
from service.notify.sender import RelayTlsUntrusted, SmtpRelaySender
from service.platform.timeutil import utcnow
from tests.helpers import free_port
from tests.helpers.app import running_app, unique
from tests.helpers.imap_server import ImapServer
from tests.helpers.mail import TIP, body_of, raw, relay_on
from tests.helpers.tls import throwaway_ca

PASSWORD = "tls pass 42"  # noqa: S105


def imap_settings(harness, server: ImapServer, **overrides: object):  # type: ignore[no-untyped-def]
    return harness.runtime.settings.model_copy(
        update={
            "imap_host": "127.0.0.1",
            "imap_port": server.port,
            "imap_tls": True,  # the default
            "imap_tls_ca_file": None,
            "imap_username": "tips",
            "imap_password": SecretStr(PASSWORD),
            "imap_mailbox": "INBOX",
            "imap_done_mailbox": "",
            **overrides,
        }
    )


async def rows_for(harness, message: bytes) -> list[ReceivedMail]:  # type: ignore[no-untyped-def]
    key = dedupe_key(harness.runtime, parse_message(message))
    async with harness.runtime.session_factory() as session:
        return list((await session.scalars(select(ReceivedMail).where(ReceivedMail.dedupe_key == key))).all())


async def test_imap_over_tls_with_the_ca_trusted_fetches_and_marks(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca = throwaway_ca(tmp_path / "pki")
    async with ImapServer("tips", PASSWORD, ssl_context=ca.server_context()) as server:
        message = raw("派出所民警收钱放人（TLS）。")
        server.inbox.append(message)
        settings = imap_settings(harness, server, imap_tls_ca_file=ca.ca_file)
        client = AioImapClient(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
        await client.connect()
        try:
            assert client.client.protocol.transport.get_extra_info("ssl_object") is not None  # really TLS
            assert await poll_once(client, MailIngest(harness.runtime, via="imap")) == 1
        finally:
            await client.close()
        assert server.inbox.messages == []  # flagged and expunged after the commit
        assert "LOGIN" in server.events
    (row,) = await rows_for(harness, message)
    assert row.outcome == "clue" and row.via == "imap"


@pytest.mark.parametrize("trust", ["another CA", "system store"])
async def test_imap_over_tls_refuses_an_untrusted_certificate(harness, tmp_path, trust, caplog) -> None:  # type: ignore[no-untyped-def]
    ca = throwaway_ca(tmp_path / "pki")
    other = throwaway_ca(tmp_path / "other", label="someone-else")
    ca_file = other.ca_file if trust == "another CA" else None
    async with ImapServer("tips", PASSWORD, ssl_context=ca.server_context()) as server:
        message = raw("法官收受律师财物（证书不可信）。")
        server.inbox.append(message)
        settings = imap_settings(harness, server, imap_tls_ca_file=ca_file)

        client = AioImapClient(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
        with pytest.raises(ImapTlsUntrusted, match="certificate is not trusted.*TIPLINE_IMAP_TLS_CA_FILE"):
            await client.connect()
        await client.close()

        # The poller loop: it says what is wrong, keeps trying, and touches nothing.
        fast = settings.model_copy(update={"imap_poll_seconds": 0.05})
        runtime = dataclasses.replace(harness.runtime, settings=fast)
        caplog.set_level(logging.WARNING, logger="tipline.mail.imap")
        async with running_poller(runtime):
            for _ in range(100):
                if sum("not trusted" in r.getMessage() for r in caplog.records) >= 2:
                    break
                await asyncio.sleep(0.02)
        if "intake" in runtime.__dict__:  # the copied runtime's own intake entry
            await runtime.intake.close()
        untrusted = [r for r in caplog.records if "not trusted" in r.getMessage()]
        assert len(untrusted) >= 2 and all(r.levelno == logging.ERROR for r in untrusted)
        assert PASSWORD not in caplog.text

        assert server.events == []  # no command at all: the password never left
        assert [m.raw for m in server.inbox.messages] == [message]
        assert server.inbox.messages[0].flags == set()  # not marked read, not deleted
    assert await rows_for(harness, message) == []


def tip_mail(sender: str) -> bytes:
    return (
        f"From: 某人 <{sender}>\r\nTo: {TIP}\r\nSubject: 举报\r\nMessage-ID: <{unique('tls')}@example.cn>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "看守所民警收钱给在押人员传递消息。\r\n"
    ).encode()


async def ack_rows(runtime) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    query = select(OutboxMessage).where(OutboxMessage.kind == notify_service.ACK)
    async with runtime.session_factory() as session:
        return list((await session.scalars(query)).all())


async def test_relay_starttls_with_the_ca_trusted_delivers(tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    ca = throwaway_ca(tmp_path / "pki")
    port = free_port()
    relay_settings = {"relay_host": "127.0.0.1", "relay_port": port, "relay_tls_ca_file": ca.ca_file}
    async with running_app(tmp_path / "data", fresh_database_url, **relay_settings) as h:
        assert h.runtime.settings.relay_starttls  # the default
        sender = "reporter.tls.1@example.cn"
        assert await MailIngest(h.runtime)(tip_mail(sender)) == "clue"
        with relay_on(port, tls_context=ca.server_context()) as relay:
            await Worker(h.runtime).run_once()
        [(recipients, message)] = relay.messages
        assert recipients == [sender] and relay.over_tls == [True]
        assert "查询码" in body_of(message)
        [row] = await ack_rows(h.runtime)
        assert row.status == "sent" and row.sealed is None


async def test_relay_with_an_untrusted_certificate_sends_nothing_and_keeps_the_message(
    tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    ca = throwaway_ca(tmp_path / "pki")
    other = throwaway_ca(tmp_path / "other", label="someone-else")
    port = free_port()
    relay_settings = {"relay_host": "127.0.0.1", "relay_port": port, "relay_tls_ca_file": other.ca_file}
    async with running_app(tmp_path / "data", fresh_database_url, **relay_settings) as h:
        assert await MailIngest(h.runtime)(tip_mail("reporter.tls.2@example.cn")) == "clue"
        with relay_on(port, tls_context=ca.server_context()) as relay:
            await Worker(h.runtime).run_once()
            # The sender alone, for the message a relay operator would read.
            probe = tip_mail("probe@example.cn")
            refused = "certificate is not trusted.*TIPLINE_RELAY_TLS_CA_FILE"
            with pytest.raises(RelayTlsUntrusted, match=refused):
                await SmtpRelaySender(h.runtime.settings).send(email.message_from_bytes(probe))  # type: ignore[arg-type]
            # The system store does not trust a throwaway CA either.
            system = h.runtime.settings.model_copy(update={"relay_tls_ca_file": None})
            with pytest.raises(RelayTlsUntrusted):
                await SmtpRelaySender(system).send(email.message_from_bytes(probe))  # type: ignore[arg-type]
        assert relay.messages == []  # nothing was sent
        [row] = await ack_rows(h.runtime)
        assert row.status == "pending" and row.sealed is not None  # kept sealed, to be retried
        async with h.runtime.session_factory() as session:
            job = await session.scalar(select(Job).where(Job.task == notify_service.SEND_TASK))
        assert job is not None and job.status == "queued" and job.last_error == "RelayTlsUntrusted"

        # The CA trusted (the operator fixed the setting): the retry delivers it.
        h.runtime.settings = h.runtime.settings.model_copy(update={"relay_tls_ca_file": ca.ca_file})
        with relay_on(port, tls_context=ca.server_context()) as relay:
            await Worker(h.runtime).run_once(now=utcnow() + timedelta(minutes=5))
        assert len(relay.messages) == 1 and relay.over_tls == [True]
        [row] = await ack_rows(h.runtime)
        assert row.status == "sent" and row.sealed is None
