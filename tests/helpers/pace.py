"""How fast this machine is right now, so that timing floors and limits in tests hold on slower ones too.

A number such as "50 wrong codes in 10 s" or "parsed in under 2 s" was set on one machine (the reference:
an idle 2-core development machine) and fails on a slower or busier one without anything being wrong.
So tests write such numbers for the reference machine and scale them by ``slowness``: how many times
longer a fixed piece of work takes here, measured in the same run, than it took on the reference machine.
Slowness is never below 1: on a faster machine the numbers stay as written, never stricter.

``python -m tests.pace`` prints this machine's measurements (to set a reference: take them on an idle one).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# What the calibration work took on the reference machine (median of its runs, seconds).
REFERENCE_CPU_SECONDS = 0.0135
REFERENCE_HEALTHZ_SECONDS = 0.0020  # one GET /healthz round trip to a real `tipline serve` on loopback
_CPU_RUNS = 7
_FRESH_FOR = 30.0  # seconds a CPU measurement stands for: the load on a shared machine changes


@dataclass(frozen=True)
class Pace:
    slowness: float  # >= 1: how many times slower than the reference machine

    def floor(self, count: float) -> float:
        """An amount of work done in a given time on the reference machine, as expected here."""
        return count / self.slowness

    def limit(self, seconds: float) -> float:
        """A duration allowed on the reference machine, as allowed here."""
        return seconds * self.slowness


def _pace(measured: float, reference: float) -> Pace:
    return Pace(max(1.0, measured / reference))


def _cpu_work() -> None:
    """Python-level work like a request's: JSON, hashing, small objects."""
    document = {"text": "举报内容，某局副局长收受红包。" * 20, "numbers": list(range(100))}
    for _ in range(300):
        blob = json.dumps(document, ensure_ascii=False).encode()
        hashlib.sha256(blob).digest()
        json.loads(blob)
    sum(i * i for i in range(100_000))


def cpu_seconds() -> float:
    """The median time of the calibration work here, now (the median, not the best: a busy machine's share
    of the CPU is what the tests being calibrated get too)."""
    runs = []
    for _ in range(_CPU_RUNS):
        started = time.perf_counter()
        _cpu_work()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def cpu_pace_over(samples: list[float]) -> Pace:
    """The pace over a longer run, from ``cpu_seconds()`` taken at moments spread across it."""
    return _pace(statistics.median(samples), REFERENCE_CPU_SECONDS)


_last_cpu: tuple[float, Pace] | None = None


def cpu_pace() -> Pace:
    """This machine's pace for CPU work in the test process, measured now (or in the last half minute)."""
    global _last_cpu
    now = time.monotonic()
    if _last_cpu is None or now - _last_cpu[0] > _FRESH_FOR:
        _last_cpu = (now, _pace(cpu_seconds(), REFERENCE_CPU_SECONDS))
    return _last_cpu[1]


def request_seconds(call: Callable[[], object], rounds: int = 20) -> float:
    """The median time of ``call()`` (one request), after one call to warm up."""
    call()
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


async def async_request_seconds(call: Callable[[], Awaitable[object]], rounds: int = 20) -> float:
    await call()
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def healthz_pace(seconds: float) -> Pace:
    """The pace of a real server and its client on this machine, from ``request_seconds`` of GET /healthz."""
    return _pace(seconds, REFERENCE_HEALTHZ_SECONDS)


def _main() -> None:
    import os
    import tempfile
    from pathlib import Path

    import httpx

    from tests.helpers import tipline_server

    print(f"cpu work: {cpu_seconds() * 1000:.1f} ms (reference {REFERENCE_CPU_SECONDS * 1000:.1f} ms)")
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
        env.update(TIPLINE_DATA_DIR=data, TIPLINE_DATABASE_URL=f"sqlite+aiosqlite:///{data}/pace.db")
        env.update(TIPLINE_DATABASE_AUTO_UPGRADE="true")
        with (
            tipline_server(env, Path(data) / "server.log") as server,
            httpx.Client(base_url=server.base_url) as client,
        ):
            took = request_seconds(lambda: client.get("/healthz"), rounds=200)
    print(f"GET /healthz: {took * 1000:.2f} ms (reference {REFERENCE_HEALTHZ_SECONDS * 1000:.2f} ms)")


if __name__ == "__main__":
    _main()
