"""A small HTTP/1.1 load generator for the benchmarks: keep-alive connections over asyncio streams.

Two modes: ``closed`` (N connections send back to back for T seconds: throughput) and ``open`` (a fixed
request rate, each request on the next free connection: latency at that rate). Run it in its own process so
it does not share a core's event loop with the server under test.

Throughput and latency count successful answers (2xx) only: a server that answers 503 or 429 quickly must
not look fast. Other answers are ``failures``, broken connections ``errors``, both reported beside.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    label: str
    requests: int  # successful (2xx) answers
    failures: int  # other answers
    errors: int  # no answer (connection errors)
    seconds: float
    rps: float  # successful answers a second
    p50_ms: float  # of the successful answers
    p99_ms: float
    statuses: dict[str, int]


def _ok(status: int) -> bool:
    return 200 <= status < 300


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def build_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return parts.hostname or "127.0.0.1", parts.port or 80, head + body


def _summarise(
    label: str, latencies: list[float], statuses: dict[str, int], errors: int, seconds: float
) -> LoadResult:
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        label=label,
        requests=len(latencies),
        failures=sum(count for status, count in statuses.items() if not _ok(int(status))),
        errors=errors,
        seconds=round(seconds, 2),
        rps=round(len(latencies) / seconds, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 2),
        p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        statuses=statuses,
    )


async def closed_loop(
    label: str, url: str, bodies: list[bytes], connections: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        host, port, _ = build_request(url, b"")
        conn = await Connection.open(host, port)
        i = index
        while time.perf_counter() < stop_at:
            _, _, raw = build_request(url, bodies[i % len(bodies)])
            i += connections
            started = time.perf_counter()
            try:
                status = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                conn.close()
                conn = await Connection.open(host, port)
                continue
            if _ok(status):
                latencies.append(time.perf_counter() - started)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return _summarise(label, latencies, statuses, errors, time.perf_counter() - started)


async def open_loop(
    label: str, url: str, bodies: list[bytes], rate: float, seconds: float, pool: int = 64
) -> LoadResult:
    """Requests start on a fixed schedule; latency counts from the scheduled start (no coordinated omission)."""
    host, port, _ = build_request(url, b"")
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(pool):
        idle.put_nowait(await Connection.open(host, port))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        conn = await idle.get()
        _, _, raw = build_request(url, bodies[i % len(bodies)])
        try:
            status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            conn.close()
            idle.put_nowait(await Connection.open(host, port))
            return
        if _ok(status):
            latencies.append(time.perf_counter() - scheduled)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        idle.put_nowait(conn)

    total = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return _summarise(label, latencies, statuses, errors, time.perf_counter() - start)


def run_in_process(kind: str, label: str, url: str, bodies: list[bytes], arg: float, seconds: float) -> dict:
    """Entry point for a separate process (multiprocessing)."""
    if kind == "closed":
        result = asyncio.run(closed_loop(label, url, bodies, int(arg), seconds))
    else:
        result = asyncio.run(open_loop(label, url, bodies, arg, seconds))
    return asdict(result)


def to_json(result: dict) -> str:
    return json.dumps(result, ensure_ascii=False)
