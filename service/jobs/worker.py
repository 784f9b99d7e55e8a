"""The worker loop: schedule periodic slots, claim one due job, run it, repeat; sleep when idle.

Each job runs in its own transaction together with marking it done, so a job's database effects and its
completion commit or vanish together. Outside effects (sending mail) must be idempotent: a worker that
dies after sending but before committing leaves the job to run again when its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from service.jobs import service as jobs_service
from service.jobs.registry import JobContext, Registry, load_task_modules
from service.runtime import Runtime
from service.timeutil import utcnow
from service.workers import spawn_helper

log = logging.getLogger("tipline.jobs")


def default_worker_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        registry: Registry | None = None,
        worker_id: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.registry = registry or load_task_modules()
        self.worker_id = worker_id or default_worker_id()
        self.poll_interval = poll_interval
        self.last_tick = time.monotonic()  # liveness: the loop is turning
        self._scheduled: dict[str, datetime] = {}

    async def schedule(self, now: datetime) -> None:
        """Insert this slot's job for each periodic task, once per slot per process (cheap on SQLite)."""
        due = []
        for task in self.registry.periodic_tasks():
            assert task.every is not None
            start = jobs_service.slot_start(task.every, now)
            if self._scheduled.get(task.name) != start:
                due.append((task, start))
        if not due:
            return
        async with self.runtime.session_factory() as session:
            for task, _ in due:
                await jobs_service.schedule_periodic(session, task=task, now=now)
            await session.commit()
        for task, start in due:
            self._scheduled[task.name] = start

    async def run_one(self, now: datetime | None = None) -> str | None:
        """Claim and run one due job. Returns its final status, or None if nothing was due."""
        factory = self.runtime.session_factory
        async with factory() as session:
            job = await jobs_service.claim(session, worker_id=self.worker_id, registry=self.registry, now=now)
            await session.commit()
        if job is None:
            return None
        task = self.registry.get(job.task)
        assert task is not None
        started = time.monotonic()
        try:
            async with factory() as session:
                context = JobContext(session, self.runtime, job.id, job.attempt, job.run_at)
                await task.handler(context, job.payload)
                if not await jobs_service.finish(session, job_id=job.id, worker_id=self.worker_id):
                    await session.rollback()
                    log.warning("job lease lost, changes discarded", extra={"job": job.id, "task": job.task})
                    return "lost"
                await session.commit()
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            # The type only: messages may carry data from the job's records.
            error = type(exc).__name__
            async with factory() as session:
                status = await jobs_service.fail(
                    session, job_id=job.id, worker_id=self.worker_id, error=error
                )
                await session.commit()
            log.warning(
                "job failed",
                extra={
                    "job": job.id,
                    "task": job.task,
                    "attempt": job.attempt,
                    "error": error,
                    "status": status,
                },
            )
            return status or "lost"
        log.info(
            "job done",
            extra={
                "job": job.id,
                "task": job.task,
                "attempt": job.attempt,
                "ms": round((time.monotonic() - started) * 1000),
            },
        )
        return jobs_service.DONE

    async def run_once(self, now: datetime | None = None, *, limit: int = 100) -> int:
        """Schedule, then run due jobs until none is left (or ``limit``). Returns how many ran."""
        await self.schedule(now or utcnow())
        ran = 0
        while ran < limit and await self.run_one(now) is not None:
            ran += 1
            self.last_tick = time.monotonic()
        self.last_tick = time.monotonic()
        return ran

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("worker started", extra={"worker": self.worker_id, "tasks": self.registry.names()})
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - the database may be away; keep turning
                log.warning("worker tick failed", extra={"error": type(exc).__name__})
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass
        log.info("worker stopped", extra={"worker": self.worker_id})

    def stalled(self, factor: float = 30.0) -> bool:
        """No tick for ``factor`` poll intervals (at least a minute): liveness fails, the pod restarts."""
        return time.monotonic() - self.last_tick > max(60.0, factor * self.poll_interval)


@contextlib.asynccontextmanager
async def running_worker(app: Any, runtime: Runtime) -> AsyncIterator[Worker]:
    """Run the loop as a background task of an app's lifespan (``tipline serve`` with the worker role)."""
    worker = Worker(runtime, poll_interval=getattr(runtime.settings, "worker_poll_seconds", 1.0))
    app.state.worker = worker
    stop = asyncio.Event()
    loop_task = asyncio.create_task(worker.run_forever(stop), name="tipline-worker")
    try:
        yield worker
    finally:
        stop.set()
        await loop_task


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
    import signal
    import threading

    from service import observability
    from service.classification import service as classification_service
    from service.runtime import build_runtime

    observability.configure_logging()
    classification_service.configure_taxonomy(settings.taxonomy_path)

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
