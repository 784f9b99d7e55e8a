"""Real SMTP conversations against the mailbox receiver: aiosmtplib, smtplib and swaks."""

from __future__ import annotations

import asyncio
import datetime
import logging
import smtplib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib
import pytest
import pytest_asyncio

from service.mail.parse import parse_message
from service.mail.receiver import (
    RunningReceiver,
    TemporarilyUnavailable,
    serve_receiver,
    start_receiver,
)
from tests.helpers.conformance import conformance_file, conformance_files
from tests.helpers.tools import apt, require_executable

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT / "tests" / "data" / "email" / "corpus"
TIP_ADDRESS = "jubao@tipline.local"
SENDER = "canary.sender.7f3a@example.cn"
KINDS = {"report", "auto_reply", "bounce", "spam", "unparseable"}


@dataclass
class Recorder:
    """An ingest callback that parses like the real intake and records what it committed."""

    calls: list[bytes] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    fail_with: BaseException | None = None

    async def __call__(self, raw: bytes) -> str:
        self.events.append("ingest-start")
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        parsed = parse_message(raw)
        self.calls.append(raw)
        self.kinds.append(parsed.kind)
        self.events.append("ingest-end")
        return parsed.content_hash


StartReceiver = Callable[..., Awaitable[tuple[RunningReceiver, Recorder]]]


@pytest_asyncio.fixture(loop_scope="session")
async def receiver_factory() -> AsyncIterator[StartReceiver]:
    started: list[RunningReceiver] = []

    async def start(max_size: int = 2 * 1024 * 1024, **kwargs: object) -> tuple[RunningReceiver, Recorder]:
        recorder = Recorder()
        receiver = await serve_receiver("127.0.0.1", 0, recorder, [TIP_ADDRESS], max_size, **kwargs)  # type: ignore[arg-type]
        started.append(receiver)
        return receiver, recorder

    yield start
    for receiver in started:
        await receiver.stop()


def _mail(subject: str = "test", body: str = "法官收红包。") -> bytes:
    return (
        f"From: Canary <{SENDER}>\r\nTo: {TIP_ADDRESS}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


async def test_relay_is_refused(receiver_factory: StartReceiver) -> None:
    receiver, recorder = await receiver_factory()

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail(SENDER, ["victim@example.org"], _mail())
            assert refused.value.recipients["victim@example.org"][0] == 550

    await asyncio.to_thread(send)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(
            _mail(),
            sender=SENDER,
            recipients=["x@tipline.local"],
            hostname="127.0.0.1",
            port=receiver.port,
            start_tls=False,
        )
    assert recorder.calls == []


async def test_mixed_recipients_deliver_once_to_the_tip_address(receiver_factory: StartReceiver) -> None:
    receiver, recorder = await receiver_factory()
    errors, _ = await aiosmtplib.send(
        _mail(),
        sender=SENDER,
        recipients=["other@example.org", "JUBAO@tipline.local"],
        hostname="127.0.0.1",
        port=receiver.port,
        start_tls=False,
    )
    assert errors["other@example.org"].code == 550
    assert len(recorder.calls) == 1


async def test_oversize_is_refused_in_the_conversation(receiver_factory: StartReceiver) -> None:
    receiver, recorder = await receiver_factory(max_size=50_000)
    big = _mail(body="x" * 60_000)

    def declared() -> None:  # smtplib declares SIZE=, refused at MAIL FROM
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail(SENDER, [TIP_ADDRESS], big)
            assert refused.value.smtp_code == 552

    def undeclared() -> None:  # no SIZE parameter: refused after DATA
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as client:
            client.ehlo()
            assert client.mail(SENDER)[0] == 250
            assert client.rcpt(TIP_ADDRESS)[0] == 250
            assert client.data(big)[0] == 552

    await asyncio.to_thread(declared)
    await asyncio.to_thread(undeclared)
    assert recorder.calls == []


@pytest.mark.parametrize("failure", [TemporarilyUnavailable("database down"), RuntimeError("boom")])
async def test_failed_ingest_answers_451(
    receiver_factory: StartReceiver, failure: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver, recorder = await receiver_factory()
    recorder.fail_with = failure
    with pytest.raises(aiosmtplib.SMTPDataError) as error:
        await aiosmtplib.send(
            _mail(body="canary-content-51f2"),
            sender=SENDER,
            recipients=[TIP_ADDRESS],
            hostname="127.0.0.1",
            port=receiver.port,
            start_tls=False,
        )
    assert error.value.code == 451
    assert "4.3.0" in error.value.message
    assert recorder.calls == []
    for secret in (SENDER, TIP_ADDRESS, "127.0.0.1", "canary-content-51f2", "database down", "boom"):
        assert secret not in caplog.text


async def test_250_only_after_ingest_returned(receiver_factory: StartReceiver) -> None:
    receiver, recorder = await receiver_factory()
    recorder.gate = asyncio.Event()

    async def send() -> None:
        await aiosmtplib.send(
            _mail(),
            sender=SENDER,
            recipients=[TIP_ADDRESS],
            hostname="127.0.0.1",
            port=receiver.port,
            start_tls=False,
        )
        recorder.events.append("client-got-250")

    sending = asyncio.create_task(send())
    for _ in range(200):
        if recorder.events:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert recorder.events == ["ingest-start"]
    assert not sending.done()
    recorder.gate.set()
    await asyncio.wait_for(sending, 10)
    assert recorder.events == ["ingest-start", "ingest-end", "client-got-250"]


async def test_client_hanging_up_does_not_cancel_the_commit(receiver_factory: StartReceiver) -> None:
    receiver, recorder = await receiver_factory()
    recorder.gate = asyncio.Event()
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    await reader.readline()
    for command in (
        b"EHLO client",
        f"MAIL FROM:<{SENDER}>".encode(),
        f"RCPT TO:<{TIP_ADDRESS}>".encode(),
        b"DATA",
    ):
        writer.write(command + b"\r\n")
        await writer.drain()
        line = await reader.readline()
        while line[3:4] == b"-":
            line = await reader.readline()
    writer.write(_mail() + b".\r\n")
    await writer.drain()
    for _ in range(200):
        if recorder.events:
            break
        await asyncio.sleep(0.01)
    writer.close()
    await asyncio.sleep(0.1)
    recorder.gate.set()
    await receiver.stop()
    assert recorder.events == ["ingest-start", "ingest-end"]
    assert len(recorder.calls) == 1


async def test_corpus_over_aiosmtplib(receiver_factory: StartReceiver) -> None:
    receiver, recorder = await receiver_factory()
    cases = sorted(CORPUS.glob("*.eml"))
    accepted = 0
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, start_tls=False) as client:
        for case in cases:
            raw = case.read_bytes()
            options = ["SMTPUTF8"] if any(byte > 127 for byte in raw.split(b"\r\n\r\n", 1)[0]) else []
            sender = "举报人@例子.中国" if options else SENDER
            try:
                await client.sendmail(sender, [TIP_ADDRESS], raw, mail_options=options)
                accepted += 1
            except aiosmtplib.SMTPDataError as error:
                assert error.code == 554, case.name
                assert case.name.endswith("binary-not-mail.eml")
                await client.rset()
    assert accepted == len(cases) - 1
    assert len(recorder.calls) == accepted


async def test_every_conformance_message_over_smtplib(
    receiver_factory: StartReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cases = conformance_files()
    assert len(cases) >= 15
    receiver, recorder = await receiver_factory(max_size=4 * 1024 * 1024)

    def send_all() -> dict[str, int]:
        outcome: dict[str, int] = {}
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=20) as client:
            for case in cases:
                before = len(recorder.calls)
                try:
                    client.sendmail(SENDER, [TIP_ADDRESS], case.read_bytes())
                    outcome[case.name] = 250
                    assert len(recorder.calls) == before + 1, case.name
                except smtplib.SMTPResponseException as error:
                    assert 500 <= error.smtp_code < 600, case.name
                    assert len(recorder.calls) == before, case.name
                    outcome[case.name] = error.smtp_code
                    client.rset()
        return outcome

    outcome = await asyncio.to_thread(send_all)
    assert outcome["mail_outlook_1.eml"] == 554
    assert sum(code == 250 for code in outcome.values()) == len(recorder.calls) == len(cases) - 1
    assert set(recorder.kinds) <= KINDS
    for secret in (SENDER, "127.0.0.1", "218.15.33.11", "suvorov.s@nalg.ru", "64.98.42.207"):
        assert secret not in caplog.text


async def test_swaks(receiver_factory: StartReceiver) -> None:
    swaks = require_executable("swaks", apt("swaks"))
    receiver, recorder = await receiver_factory()
    base = [
        swaks,
        "--server",
        "127.0.0.1",
        "--port",
        str(receiver.port),
        "--from",
        SENDER,
        "--helo",
        "client",
    ]

    async def run(*args: str) -> int:
        process = await asyncio.create_subprocess_exec(
            *base, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        return await asyncio.wait_for(process.wait(), 20)

    assert await run("--to", TIP_ADDRESS, "--data", str(CORPUS / "01-utf8-plain.eml")) == 0
    assert await run("--to", TIP_ADDRESS, "--data", str(conformance_file("mail_test_9.eml"))) == 0
    assert await run("--to", "someone@example.org") != 0
    assert len(recorder.calls) == 2
    assert "张法官收了被执行人的红包" in parse_message(recorder.calls[0]).body


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tipline.local")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


async def test_starttls_when_a_certificate_is_given(receiver_factory: StartReceiver, tmp_path: Path) -> None:
    from service.mail.receiver import tls_context_from_files

    receiver, recorder = await receiver_factory(tls_context=tls_context_from_files(*_self_signed(tmp_path)))
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, start_tls=False) as client:
        await client.ehlo()
        assert client.supports_extension("starttls")
        await client.starttls(tls_context=client_context)
        await client.sendmail(SENDER, [TIP_ADDRESS], _mail())
    assert len(recorder.calls) == 1


def test_threaded_receiver_with_smtplib() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    received: list[bytes] = []

    async def ingest(raw: bytes) -> str:
        received.append(raw)
        return "ok"

    controller = start_receiver("127.0.0.1", port, ingest, [TIP_ADDRESS], 1_000_000)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.sendmail(SENDER, [TIP_ADDRESS], _mail()) == {}
    finally:
        controller.stop()
    assert len(received) == 1
