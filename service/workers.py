"""Worker processes for CPU-heavy steps (mail parsing, intake classification and sealing), so that they run
on another core beside the event loop instead of on it.

Workers are spawned (they share no locks or threads with the server), leave when the server's process is
gone, and are recreated after a fork and after a worker died. A caller that gets ``WorkerUnavailable``
does the work in its own process instead, so nothing ever depends on a pool being there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from typing import Any


class WorkerUnavailable(Exception):
    """No worker ran the call to its end. ``started`` says whether one may have begun it: a call that never
    reached a worker can safely be done elsewhere; one that did may have had effects (a commit)."""

    def __init__(self, *, started: bool) -> None:
        super().__init__("worker process unavailable")
        self.started = started


def default_worker_count() -> int:
    """One core stays with the event loop; at most four workers."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class WorkerPool:
    def __init__(
        self, workers: int, *, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self.workers = workers
        self._initializer = initializer
        self._initargs = initargs
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._pid = 0

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None or self._pid != os.getpid():
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(), self._initializer, self._initargs),
            )
            self._pid = os.getpid()
        return self._pool

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker; raises ``WorkerUnavailable`` if the pool is broken."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor(), fn, *args)
        except (concurrent.futures.process.BrokenProcessPool, RuntimeError) as exc:
            self._pool = None  # a worker died earlier (killed, out of memory): a new pool next time
            raise WorkerUnavailable(started=False) from exc
        try:
            return await future
        except concurrent.futures.process.BrokenProcessPool as exc:
            self._pool = None  # a worker died while the call was queued or running
            raise WorkerUnavailable(started=True) from exc

    def pids(self) -> list[int]:
        """The live workers' process ids (operations and tests: which processes hold what)."""
        if self._pool is None or self._pid != os.getpid():
            return []
        return [process.pid for process in (self._pool._processes or {}).values() if process.is_alive()]

    def shutdown(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None


def _start_worker(
    parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """In each worker: leave when the server's process is gone (a SIGKILLed parent cannot tell its pool to
    stop, and a worker blocked on its job queue never sees the pipe close: it holds both ends)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)
