"""The worker pool: calls run in a spawned process and come back over a socket the event loop reads itself;
a worker that dies fails only what it held (and says which call may have begun), and is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from service.platform.workers import WorkerPool, WorkerUnavailable, mergeable


def _add(a: int, b: int) -> int:
    return a + b


def _pid() -> int:
    return os.getpid()


def _sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _refuse(text: str) -> None:
    raise ValueError(text)


class _Unpicklable(Exception):
    def __init__(self, a: str, b: str) -> None:  # pickles, but does not unpickle: two arguments
        super().__init__(a)


def _raise_unpicklable() -> None:
    raise _Unpicklable("a", "b")


def _big(size: int) -> bytes:
    return b"x" * size


def _merged_lengths(calls: list[tuple[float, str]]) -> list[tuple[str, int]]:
    """Each call's answer says how many calls ran together with it."""
    time.sleep(max(seconds for seconds, _ in calls))
    return [(label, len(calls)) for _, label in calls]


@mergeable(_merged_lengths)
def _labelled(seconds: float, label: str) -> tuple[str, int]:
    return _merged_lengths([(seconds, label)])[0]


async def test_calls_run_in_another_process_and_errors_come_back() -> None:
    pool = WorkerPool(1)
    try:
        assert await pool.run(_add, 2, 3) == 5
        (pid,) = pool.pids()
        assert pid != os.getpid() and await pool.run(_pid) == pid
        with pytest.raises(ValueError, match="bad input"):
            await pool.run(_refuse, "bad input")
        with pytest.raises(RuntimeError, match="unreadable"):
            await pool.run(_raise_unpicklable)
        # Larger than a socket buffer both ways, several at once: framing holds.
        sizes = [3 << 20, 1, 5 << 20, 70_000]
        results = await asyncio.gather(*(pool.run(_big, size) for size in sizes))
        assert [len(result) for result in results] == sizes
        assert await pool.run(_add, 1, 1) == 2  # still the same worker
        assert pool.pids() == [pid]
    finally:
        pool.shutdown()


async def test_a_killed_worker_fails_what_it_held_and_is_replaced() -> None:
    pool = WorkerPool(1)
    try:
        (pid,) = [await pool.run(_pid)]
        running = asyncio.ensure_future(pool.run(_sleep_then_pid, 5))
        queued = asyncio.ensure_future(pool.run(_add, 1, 2))
        await asyncio.sleep(0.5)  # the first call is running, the second waits behind it
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerUnavailable) as first:
            await running
        with pytest.raises(WorkerUnavailable) as second:
            await queued
        assert first.value.started and not second.value.started  # only the running call may have had effects
        assert pool.pids() == []
        new_pid = await pool.run(_pid)  # a new worker
        assert new_pid != pid and pool.pids() == [new_pid]
    finally:
        pool.shutdown()


async def test_calls_waiting_together_are_merged_and_all_count_as_begun() -> None:
    pool = WorkerPool(1)
    try:
        (pid,) = [await pool.run(_pid)]  # the worker is up
        first = asyncio.ensure_future(pool.run(_labelled, 1.0, "first"))
        await asyncio.sleep(0.3)  # the first is running
        waiting = [asyncio.ensure_future(pool.run(_labelled, 0.0, label)) for label in ("a", "b", "c")]
        assert await first == ("first", 1)
        assert await asyncio.gather(*waiting) == [("a", 3), ("b", 3), ("c", 3)]  # one run for the three
        # A worker killed during a merged run: every call in that run may have had effects.
        blocker = asyncio.ensure_future(pool.run(_labelled, 1.0, "blocker"))
        await asyncio.sleep(0.3)
        merged = [asyncio.ensure_future(pool.run(_labelled, 3.0, label)) for label in ("x", "y")]
        await asyncio.sleep(1.2)  # the blocker is answered; x and y run together now
        assert await blocker == ("blocker", 1)
        os.kill(pid, signal.SIGKILL)
        outcomes = await asyncio.gather(*merged, return_exceptions=True)
        assert all(isinstance(o, WorkerUnavailable) and o.started for o in outcomes)
    finally:
        pool.shutdown()


async def test_a_worker_whose_initializer_fails_started_nothing() -> None:
    pool = WorkerPool(1, initializer=_refuse, initargs=("cannot start",))
    try:
        with pytest.raises(WorkerUnavailable) as failed:
            await pool.run(_add, 1, 2)
        assert not failed.value.started
    finally:
        pool.shutdown()


def test_one_pool_serves_one_event_loop_after_another() -> None:
    """The mail pool is module-wide: each loop that uses it reads the answers itself."""
    pool = WorkerPool(1)
    try:
        assert asyncio.run(pool.run(_add, 1, 2)) == 3
        assert asyncio.run(pool.run(_add, 3, 4)) == 7
        assert len(pool.pids()) == 1
    finally:
        pool.shutdown()


async def test_shutdown_ends_the_workers() -> None:
    pool = WorkerPool(2)
    await asyncio.gather(pool.run(_sleep_then_pid, 0.3), pool.run(_sleep_then_pid, 0.3))
    processes = list(pool._live)
    assert len(processes) == 2
    pool.shutdown()
    for worker in processes:
        worker.process.join(timeout=10)
        assert not worker.process.is_alive()
