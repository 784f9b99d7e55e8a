"""Mail for tests: tip messages, SMTP sending into the receiver, the received-mail row, a throwaway relay."""

from __future__ import annotations

import base64
import email
import email.policy
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiosmtplib
from aiosmtpd.controller import Controller
from sqlalchemy import select

from service.mail.ingest import dedupe_key
from service.mail.parse import parse_message
from service.mailbox.models import ReceivedMail
from tests.helpers.app import unique

TIP = "jubao@tipline.local"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def mail(text: str, *, subject: str = "举报", headers: str = "", attachment: bytes | None = None) -> bytes:
    tag = unique("m")
    head = (
        f"From: 举报人 <sender.{tag}@example.cn>\r\nTo: {TIP}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{tag}@example.cn>\r\nMIME-Version: 1.0\r\n{headers}"
    )
    if attachment is None:
        return (
            head
            + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + text
            + "\r\n"
        ).encode()
    encoded = base64.encodebytes(attachment).decode().replace("\n", "\r\n")
    return (
        head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text + "\r\n"
        '--b1\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="证据.png"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + encoded + "--b1--\r\n"
    ).encode()


async def send(port: int, raw: bytes) -> tuple[int, str]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    try:
        errors, message = await client.sendmail("s@example.cn", [TIP], raw)
        return 250, message
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    finally:
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            client.close()


async def row_for(harness, raw: bytes) -> ReceivedMail | None:  # type: ignore[no-untyped-def]
    key = dedupe_key(harness.runtime, parse_message(raw))
    async with harness.runtime.session_factory() as session:
        return await session.scalar(select(ReceivedMail).where(ReceivedMail.dedupe_key == key))


def raw(text: str) -> bytes:
    """A small plain-text tip with a fresh Message-ID (the IMAP tests' message)."""
    return (
        f"From: a <a@example.cn>\r\nTo: jubao@tipline.local\r\nSubject: 举报\r\n"
        f"Message-ID: <{unique('i')}@x>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


@dataclass
class Relay:
    """A throwaway outbound relay (aiosmtpd): what it was handed, and whether over TLS."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content or b"")))
        self.over_tls.append(session.ssl is not None)
        return "250 OK"


@contextmanager
def relay_on(port: int, tls_context: ssl.SSLContext | None = None) -> Iterator[Relay]:
    """The relay on 127.0.0.1:``port``; with ``tls_context`` it offers STARTTLS and requires it."""
    relay = Relay()
    tls = {} if tls_context is None else {"tls_context": tls_context, "require_starttls": True}
    controller = Controller(relay, hostname="127.0.0.1", port=port, **tls)
    controller.start()
    try:
        yield relay
    finally:
        controller.stop()


def body_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return message.get_content()  # type: ignore[union-attr]
