"""The processes ``tipline serve`` and ``tipline mail-receiver`` start beside (or instead of) the HTTP server:
the job loop in a process of its own, and the SMTP receiver with the IMAP poller on their own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from service.app.observability import configure_logging
from service.app.runtime import build_runtime
from service.classification import classifier
from service.jobs.worker import Worker
from service.mail.imap import running_poller
from service.mail.ingest import start as start_receiver
from service.platform.migrations import ensure_schema
from service.platform.settings import Settings
from service.platform.workers import spawn_helper

log = logging.getLogger("tipline")


def prepare_process(settings: Settings) -> None:
    """What every process of the service does first: logging, and the taxonomy in force."""
    configure_logging()
    classifier.configure_taxonomy(settings.taxonomy_path)


class WorkerProcess:
    """The job loop in a process of its own, started by ``tipline serve``: background work (near-duplicate
    linking, reminders, purges, mail) then never shares the server's event loop, and its write transactions
    are not stretched by the server's HTTP load while other writers (intake) wait for the SQLite lock.

    Replaced if it dies; its liveness (the loop's last turn) is shared, so ``/livez`` still tells."""

    def __init__(self, settings: Any) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._settings = settings
        self.poll_interval = float(settings.worker_poll_seconds)
        self._last_tick = self._context.Value("d", time.monotonic(), lock=False)
        self._process: Any = None

    def start(self) -> None:
        self._last_tick.value = time.monotonic()
        self._process = spawn_helper(
            _worker_process_main,
            self._settings,
            self._last_tick,
            os.getpid(),
            name="tipline-jobs",
            daemon=False,
        )
        self._process.start()

    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def stalled(self, factor: float = 30.0) -> bool:
        stale = time.monotonic() - self._last_tick.value > max(60.0, factor * self.poll_interval)
        return not self.alive() or stale

    def stop(self, timeout: float = 15.0) -> None:
        if self._process is None:
            return
        self._process.terminate()  # SIGTERM: the loop finishes its job and stops
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _worker_process_main(settings: Any, last_tick: Any, parent_pid: int) -> None:
    prepare_process(settings)

    async def main() -> None:
        runtime = build_runtime(settings, frozenset({"worker"}))
        worker = Worker(runtime, poll_interval=float(settings.worker_poll_seconds))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        # Where there is no parent-death signal: the pipe from the server reads end of file once it is gone.
        # Then go at once, as a SIGKILL would (a job's transaction is rolled back, its lease runs out).
        parent = multiprocessing.parent_process()
        if parent is not None:
            loop.add_reader(parent.sentinel, os._exit, 0)

        async def share_liveness() -> None:
            while not stop.is_set():
                last_tick.value = worker.last_tick
                if os.getppid() != parent_pid:  # the server is gone (SIGKILLed): leave too
                    stop.set()
                await asyncio.sleep(1.0)

        sharing = asyncio.create_task(share_liveness())
        try:
            await worker.run_forever(stop)
        finally:
            sharing.cancel()
            await runtime.close()

    threading.current_thread().name = "tipline-jobs"
    asyncio.run(main())


@contextlib.asynccontextmanager
async def running_worker_process(app: Any, settings: Any) -> AsyncIterator[WorkerProcess]:
    """``tipline serve`` with the worker role: the job loop in its own process, replaced if it dies."""
    process = WorkerProcess(settings)
    process.start()
    app.state.worker = process

    async def replace_when_dead() -> None:
        while True:
            await asyncio.sleep(2.0)
            if not process.alive():
                log.warning("job worker process ended; starting a new one")
                process.start()

    watcher = asyncio.create_task(replace_when_dead(), name="tipline-jobs-watch")
    try:
        yield process
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await asyncio.to_thread(process.stop)


async def run_mail_receiver(settings: Settings, *, smtp_port: int | None = None) -> None:
    """``tipline mail-receiver``: the SMTP receiver (and the IMAP poller when TIPLINE_IMAP_HOST is set) in
    a process of their own, until SIGTERM or SIGINT."""
    runtime = build_runtime(settings, frozenset({"mail"}))
    try:
        await ensure_schema(runtime.engine, auto_upgrade=settings.database_auto_upgrade)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            if smtp_port != 0:
                receiver = await start_receiver(runtime, port=smtp_port)
                stack.push_async_callback(receiver.stop)
                print(f"SMTP receiver listening on port {receiver.port}", flush=True)
            if settings.imap_host:
                await stack.enter_async_context(running_poller(runtime))
            await stop.wait()
    finally:
        await runtime.close()
