"""Messages per second over SMTP on loopback, each with a 100 KB attachment: the Tipline receiver (parse,
attachment pipeline, submit_tip, commit on the embedded SQLite default) beside a bare aiosmtpd receiver that
discards the message, in the same run.

The load driver runs in a process of its own (``--drive``), so that building and sending the messages
does not share the receivers' event loop and CPU time. Only messages answered 250 count in msg/s; any
other answer or a broken connection is counted as failed and reported beside.

    /work/venv/bin/python bench/bench_smtp.py [--messages 200] [--concurrency 4] [--rounds 3] [--stages]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.app.models import *  # noqa: E402,F403 - every table, for the counts
from service.app.runtime import build_runtime  # noqa: E402
from service.attachments.models import Attachment  # noqa: E402
from service.mail.ingest import MailIngest  # noqa: E402
from service.mail.receiver import serve_receiver  # noqa: E402
from service.platform.migrations import ensure_schema  # noqa: E402
from service.platform.settings import Settings  # noqa: E402
from service.registry.models import Clue  # noqa: E402

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
        "Content-Transfer-Encoding: base64\r\n\r\n" + encoded + "--b--\r\n"
    ).encode()


async def send_all(port: int, messages: list[bytes], concurrency: int) -> dict[str, object]:
    """In the driver process: send every message over ``concurrency`` connections; 250s and the rest."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)
    ok = 0
    failed: dict[str, int] = {}

    async def client() -> None:
        nonlocal ok
        smtp = None
        while not queue.empty():
            raw = queue.get_nowait()
            try:
                if smtp is None:
                    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
                    await smtp.connect()
                refused, _ = await smtp.sendmail("s@example.cn", [TIP], raw)
            except aiosmtplib.SMTPResponseException as exc:  # refused, or a temporary failure
                failed[str(exc.code)] = failed.get(str(exc.code), 0) + 1
                continue
            except (aiosmtplib.SMTPException, OSError) as exc:  # no answer: start a new connection
                failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
                smtp = None
                continue
            if refused:
                failed["refused"] = failed.get("refused", 0) + 1
            else:
                ok += 1
        if smtp is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {
        "ok": ok,
        "failed": sum(failed.values()),
        "failures": failed,
        "seconds": seconds,
        "rate": ok / seconds,
    }


async def drive(port: int, first: int, count: int, concurrency: int) -> dict[str, object]:
    """Messages ``first`` … ``first + count - 1`` sent to ``port`` by the driver process; the receivers keep
    this process's event loop to themselves meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--drive",
        str(port),
        "--first",
        str(first),
        "--messages",
        str(count),
        "--concurrency",
        str(concurrency),
        stdout=subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"load driver exited with {process.returncode}")
    return json.loads(out)


class Discard:
    """A stock aiosmtpd handler that accepts every message and keeps nothing: the bare receiver."""

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        return "250 2.0.0 OK"


async def serve_bare() -> asyncio.AbstractServer:
    """Stock aiosmtpd (its own SMTP class and no Tipline code) on the same event loop as ours."""
    from aiosmtpd.smtp import SMTP

    def session() -> SMTP:
        return SMTP(Discard(), data_size_limit=4 * 1024 * 1024, enable_SMTPUTF8=True, decode_data=False)

    return await asyncio.get_running_loop().create_server(session, host="127.0.0.1", port=0)


async def rounds(args: argparse.Namespace, runtime) -> tuple[list[tuple[dict, dict]], int]:  # type: ignore[no-untyped-def,type-arg]
    """Bare and Tipline alternately, ``--rounds`` times: on a shared machine the load changes from one
    minute to the next, and alternating keeps each pair of figures under the same load. Also returns how
    many messages Tipline answered 250 (what it must have stored)."""
    bare_server = await serve_bare()
    bare_port = bare_server.sockets[0].getsockname()[1]
    receiver = await serve_receiver("127.0.0.1", 0, MailIngest(runtime), [TIP], 4 * 1024 * 1024)
    await drive(bare_port, -5, 5, 1)  # warm up
    accepted = (await drive(receiver.port, -5, 5, 1))["ok"]  # and start the worker
    results = []
    for r in range(args.rounds):
        bare = await drive(bare_port, 0, args.messages, args.concurrency)
        tipline = await drive(receiver.port, r * args.messages, args.messages, args.concurrency)
        accepted += tipline["ok"]
        failed = "".join(
            f", {name} failed {result['failed']} {result['failures']}"
            for name, result in (("bare", bare), ("tipline", tipline))
            if result["failed"]
        )
        ratio = tipline["rate"] / bare["rate"] if bare["rate"] else float("nan")
        print(
            f"round {r + 1}: bare {bare['rate']:7.1f} msg/s, tipline {tipline['rate']:7.1f} msg/s, "
            f"{ratio:4.0%}{failed}",
            flush=True,
        )
        results.append((bare, tipline))
    bare_server.close()
    await receiver.stop()
    return results, accepted


async def stages(runtime, attachment: bytes, n: int = 40) -> None:  # type: ignore[no-untyped-def]
    """Per-stage cost of one message, each stage alone: CPU of the calling thread and wall time, in ms."""
    from service.intake.service import Submission, prepare_tip
    from service.mail import ingest as mail_ingest
    from service.mail.parse import parse_message

    raw = make_message(10**6, attachment)
    ingest = MailIngest(runtime)
    keys = runtime.keys
    seals = {"case": 0, "identity": 0}
    seal_case, seal_identity = keys.seal_case, keys.seal_identity

    def count_case(data: bytes, binding: str) -> bytes:
        seals["case"] += 1
        return seal_case(data, binding)

    def count_identity(data: bytes, binding: str) -> bytes:
        seals["identity"] += 1
        return seal_identity(data, binding)

    async def measure(label: str, step, repeat: int = n, *, show: bool = True) -> None:  # type: ignore[no-untyped-def]
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(repeat):
            await step()
        cpu, wall = (time.thread_time() - cpu) / repeat, (time.perf_counter() - wall) / repeat
        if show:
            print(f"  {label:62s} cpu {cpu * 1000:6.2f}  wall {wall * 1000:6.2f}")

    parsed = parse_message(raw)
    submission = Submission(text=parsed.text, channel="email", submitter=dict(parsed.identity))

    async def parse() -> None:
        parse_message(raw)

    async def attachments() -> None:
        await mail_ingest._store_all(parsed, ingest.store, keys.seal_case, 10**7)

    async def worker() -> None:
        await ingest._prepare(raw)

    async def prepare() -> None:
        prepare_tip(runtime, submission, actor="public")

    def batch_of(size: int):  # type: ignore[no-untyped-def]
        async def step() -> None:
            messages = [make_message(10**7 + len(seen) + i, attachment) for i in range(size)]
            seen.extend(messages)
            prepared = [await ingest._prepare(m) for m in messages]
            started = time.thread_time(), time.perf_counter()
            await asyncio.gather(
                *(
                    ingest._report(m, p, mail_ingest.dedupe_key(runtime, p.parsed))
                    for m, p in zip(messages, prepared, strict=True)
                )
            )
            timings.append((time.thread_time() - started[0], time.perf_counter() - started[1]))

        return step

    print("per-stage cost of one message (ms; 'cpu' is the event loop thread's):")
    await measure("MIME parse (in this process)", parse)
    await measure("attachment pipeline (sniff, sanitise, encrypt, write, fsync)", attachments)
    await measure("worker round trip: parse + attachments in the worker process", worker)
    await measure("prepare_tip (classify, mask, seal)", prepare)
    seen: list[bytes] = []
    for size in (1, 4, 16):
        timings: list[tuple[float, float]] = []
        await measure("", batch_of(size), repeat=max(2, 32 // size), show=False)
        cpu = sum(t[0] for t in timings) / (len(timings) * size)
        wall = sum(t[1] for t in timings) / (len(timings) * size)
        print(
            f"  {'prepare_tip + group commit, per message, batch of ' + str(size):62s} "
            f"cpu {cpu * 1000:6.2f}  wall {wall * 1000:6.2f}"
        )
    keys.seal_case, keys.seal_identity = count_case, count_identity  # type: ignore[method-assign]
    try:
        await ingest(make_message(10**8, attachment))
    finally:
        keys.seal_case, keys.seal_identity = seal_case, seal_identity  # type: ignore[method-assign]
    print(
        f"  HPKE (X25519 + ML-KEM-768) seals per message with one attachment: {seals['case']} to the case "
        f"key, {seals['identity']} to the identity key"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", action="store_true", help="also print the per-stage cost of one message")
    parser.add_argument("--drive", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the driver process
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive is not None:
        attachment = make_attachment()
        messages = [make_message(args.first + i, attachment) for i in range(args.messages)]
        print(json.dumps(asyncio.run(send_all(args.drive, messages, args.concurrency))))
        return
    asyncio.run(benchmark(args))


async def benchmark(args: argparse.Namespace) -> None:
    # A 100 KB text attachment (an allowed kind that the pipeline sniffs, checks and encrypts).
    attachment = make_attachment()
    print(
        f"messages: {args.messages} x {args.rounds} rounds, attachment: 100 KB, concurrency: "
        f"{args.concurrency}, cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_auto_upgrade=True)  # embedded SQLite default
        runtime = build_runtime(settings, frozenset({"mail"}))
        await ensure_schema(runtime.engine, auto_upgrade=True)
        results, accepted = await rounds(args, runtime)
        async with runtime.session_factory() as session:
            clues = await session.scalar(select(func.count()).select_from(Clue))
            attachments = await session.scalar(select(func.count()).select_from(Attachment))
        assert clues == accepted and attachments == accepted, (clues, attachments, accepted)
        if args.stages:
            await stages(runtime, attachment)
        await runtime.close()

    bare_rate = statistics.median(b["rate"] for b, _ in results)
    tipline_rate = statistics.median(t["rate"] for _, t in results)
    ratio = statistics.median(t["rate"] / b["rate"] for b, t in results if b["rate"])
    bare_failed, tipline_failed = (sum(r[i]["failed"] for r in results) for i in (0, 1))
    print(f"bare aiosmtpd (discard): {bare_rate:8.1f} msg/s answered 250 (median); failed: {bare_failed}")
    print(
        f"tipline receiver:        {tipline_rate:8.1f} msg/s answered 250 (median); median ratio {ratio:.0%} "
        f"of bare; failed: {tipline_failed}"
    )
    print(f"stored: {clues} clues, {attachments} attachments (every message answered 250, warm-up included)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
