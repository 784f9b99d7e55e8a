"""Messages per second over SMTP on loopback, each with a 100 KB attachment: the Tipline receiver (parse,
attachment pipeline, submit_tip, commit on the embedded SQLite default) beside a bare aiosmtpd receiver that
discards the message, in the same run.

    /work/venv/bin/python bench/bench_smtp.py [--messages 200] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.attachments.models import Attachment  # noqa: E402
from service.channels.email.ingest import MailIngest  # noqa: E402
from service.channels.email.receiver import serve_receiver  # noqa: E402
from service.migrations import ensure_schema  # noqa: E402
from service.models import *  # noqa: E402,F403 - every table, for the counts
from service.registry.models import Clue  # noqa: E402
from service.runtime import build_runtime  # noqa: E402
from service.settings import Settings  # noqa: E402

TIP = "jubao@tipline.local"


def make_attachment() -> bytes:
    """100 KB of valid UTF-8 text: whole lines padded with newlines. (Cutting the text at 100 KB splits a
    character; the pipeline then refuses the file as undecodable and nothing is stored — an earlier version
    of this benchmark measured exactly that.)"""
    line = "证据记录：某年某月某日，某法官在某饭店收受当事人红包若干。\n".encode()
    attachment = line * (100 * 1024 // len(line))
    return attachment + b"\n" * (100 * 1024 - len(attachment))


def make_message(index: int, attachment: bytes) -> bytes:
    encoded = base64.encodebytes(attachment).decode().replace("\n", "\r\n")
    return (
        f"From: r{index} <r{index}@example.cn>\r\nTo: {TIP}\r\nSubject: 举报 {index}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.cn>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"第{index}封：法院执行局某法官收受红包，压案不办。\r\n--b\r\n"
        'Content-Type: text/plain; charset=utf-8; name="evidence.txt"\r\n'
        'Content-Disposition: attachment; filename="evidence.txt"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + "--b--\r\n"
    ).encode()


async def drive(port: int, messages: list[bytes], concurrency: int) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        try:
            while not queue.empty():
                raw = queue.get_nowait()
                await smtp.sendmail("s@example.cn", [TIP], raw)
        finally:
            await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(messages) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    # A 100 KB text attachment (an allowed kind that the pipeline sniffs, checks and encrypts).
    attachment = make_attachment()
    messages = [make_message(i, attachment) for i in range(args.messages)]

    class Discard:
        async def __call__(self, raw: bytes) -> str:
            return "discarded"

    bare = await serve_receiver("127.0.0.1", 0, Discard(), [TIP], 4 * 1024 * 1024)
    bare_rate = await drive(bare.port, messages, args.concurrency)
    await bare.stop()

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_auto_upgrade=True)  # embedded SQLite default
        runtime = build_runtime(settings, frozenset({"mail"}))
        await ensure_schema(runtime.engine, auto_upgrade=True)
        receiver = await serve_receiver("127.0.0.1", 0, MailIngest(runtime), [TIP], 4 * 1024 * 1024)
        await drive(receiver.port, [make_message(-i - 1, attachment) for i in range(5)], 1)  # warm up
        tipline_rate = await drive(
            receiver.port, [make_message(i, attachment) for i in range(args.messages)], args.concurrency
        )
        await receiver.stop()
        async with runtime.session_factory() as session:
            clues = await session.scalar(select(func.count()).select_from(Clue))
            attachments = await session.scalar(select(func.count()).select_from(Attachment))
        await runtime.close()
        expected = args.messages + 5
        assert clues == expected and attachments == expected, (clues, attachments, expected)

    print(
        f"messages: {args.messages}, attachment: 100 KB, concurrency: {args.concurrency}, cpus: {os.cpu_count()}"
    )
    print(f"bare aiosmtpd (discard): {bare_rate:8.1f} msg/s")
    print(f"tipline receiver:        {tipline_rate:8.1f} msg/s  ({tipline_rate / bare_rate:.0%} of bare)")
    print(f"stored: {clues} clues, {attachments} attachments (all messages, warm-up included)")


if __name__ == "__main__":
    asyncio.run(main())
