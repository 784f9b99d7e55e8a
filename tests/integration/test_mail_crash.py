"""Crash safety: the receiver process is SIGKILLed while mail flows — before the commit, between the commit
and the ``250``, and in the middle of DATA — 51 times per database. A sending server retries until it gets
``250``; afterwards every message is present exactly once (one clue, one received-mail row).

The receiver runs in a forked child (the real ``serve_receiver`` + ``MailIngest`` on a runtime of its own),
so a restart costs milliseconds instead of an interpreter start. The child reports "start" when ingest
begins and "committed" when it has committed, and holds a moment after each, so the parent can kill it at
exactly that point."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import smtplib
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.mail.ingest import MailIngest, dedupe_key
from service.mail.parse import parse_message
from service.mailbox.models import ReceivedMail
from service.registry.models import Clue
from tests.helpers import free_port
from tests.helpers.app import make_settings, running_app

TIP = "jubao@tipline.local"
KILLS_PER_POINT = 17  # x 3 points = 51 kills per database
POINTS = ("before_commit", "after_commit", "mid_data")


def _child(data_dir: str, database_url: str, port: int, conn) -> None:  # type: ignore[no-untyped-def]
    from service.app.runtime import build_runtime
    from service.mail.receiver import serve_receiver

    async def main() -> None:
        runtime = build_runtime(make_settings(Path(data_dir), database_url), frozenset({"mail"}))
        real = MailIngest(runtime)

        async def ingest(raw: bytes) -> str:
            conn.send("start")
            await asyncio.sleep(0.03)
            outcome = await real(raw)
            conn.send("committed")
            await asyncio.sleep(0.03)
            return outcome

        await serve_receiver("127.0.0.1", port, ingest, [TIP], 1024 * 1024)
        conn.send("ready")
        await asyncio.Event().wait()

    asyncio.run(main())


class Receiver:
    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir, self.database_url = str(data_dir), database_url
        self.port = free_port()
        self.process: multiprocessing.Process | None = None
        self.kills = 0

    def ensure(self) -> None:
        if self.process is not None and self.process.is_alive():
            return
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.get_context("fork").Process(
            target=_child, args=(self.data_dir, self.database_url, self.port, child), daemon=True
        )
        process.start()
        self.process, self.conn = process, parent
        assert self.wait_for("ready", 30), "receiver child did not start"

    def wait_for(self, event: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.conn.poll(0.01):
                if self.conn.recv() == event:
                    return True
        return False

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(10)
        self.kills += 1
        self.process = None

    def drain(self) -> None:
        while self.conn.poll(0):
            self.conn.recv()


def _send(port: int, raw: bytes) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            client.sendmail("s@example.cn", [TIP], raw)
        return True
    except (smtplib.SMTPException, OSError):
        return False


def _mid_data(port: int, raw: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    file = sock.makefile("rb")
    file.readline()
    for command in (
        b"EHLO crash\r\n",
        b"MAIL FROM:<s@example.cn>\r\n",
        f"RCPT TO:<{TIP}>\r\n".encode(),
        b"DATA\r\n",
    ):
        sock.sendall(command)
        while True:
            line = file.readline()
            if line[3:4] != b"-":
                break
    sock.sendall(raw[: len(raw) // 2])
    time.sleep(0.02)
    return sock  # type: ignore[return-value]


def _drive(receiver: Receiver, messages: list[bytes]) -> int:
    """Send every message with kills at the planned points; retry like an MTA until 250. Returns 250s."""
    accepted = 0
    for index, raw in enumerate(messages):
        point = POINTS[index % 3] if index < 3 * KILLS_PER_POINT else None
        receiver.ensure()
        receiver.drain()
        if point == "mid_data":
            sock = _mid_data(receiver.port, raw)
            receiver.kill()
            sock.close()
        elif point is not None:
            result: list[bool] = []
            thread = threading.Thread(
                target=lambda out=result, message=raw: out.append(_send(receiver.port, message))
            )
            thread.start()
            assert receiver.wait_for("start" if point == "before_commit" else "committed", 20), point
            receiver.kill()
            thread.join(30)
            assert result == [False], point  # the sender never saw 250
        for _ in range(5):  # the sending server's retries
            receiver.ensure()
            if _send(receiver.port, raw):
                accepted += 1
                break
        else:
            raise AssertionError("message never accepted")
    return accepted


@pytest.mark.slow
async def test_sigkill_while_mail_flows_loses_and_duplicates_nothing(
    backend, tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    async with running_app(tmp_path, fresh_database_url) as harness:  # migrates, makes keys
        runtime = harness.runtime
        messages = [
            (
                f"From: s{i} <s{i}@example.cn>\r\nTo: {TIP}\r\nSubject: crash {i}\r\n"
                f"Message-ID: <{uuid.uuid4().hex}@example.cn>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                f"第{i}封：法院执行局某法官收红包，压案不办。\r\n" + "补充说明。\r\n" * 50
            ).encode()
            for i in range(3 * KILLS_PER_POINT + 6)
        ]
        receiver = Receiver(tmp_path, fresh_database_url)
        try:
            accepted = await asyncio.to_thread(_drive, receiver, messages)
        finally:
            if receiver.process is not None:
                receiver.kill()
        assert receiver.kills >= 3 * KILLS_PER_POINT
        assert accepted == len(messages)
        keys = [dedupe_key(runtime, parse_message(raw)) for raw in messages]
        async with runtime.session_factory() as session:
            rows = (await session.execute(select(ReceivedMail.dedupe_key, ReceivedMail.clue_id))).all()
            clues = await session.scalar(
                select(func.count()).select_from(Clue).where(Clue.channel == "email")
            )
        by_key = {}
        for key, clue_id in rows:
            by_key.setdefault(key, []).append(clue_id)
        assert all(len(by_key.get(key, [])) == 1 for key in keys)
        assert len(rows) == len(messages) and clues == len(messages)
        assert len({clue for clue_ids in by_key.values() for clue in clue_ids}) == len(messages)
