"""Group commit for public intake.

Concurrent submissions wait in one queue; a single writer task registers whatever has gathered in one
transaction (numbers, clues, receipts and audit entries for the whole batch, one counter update and one lock
per audit chain), commits, and only then answers each request. Nothing waits on a timer: under light load a
batch holds one tip and adds no latency; under heavy load batches grow and the cost of a commit, of the
registry counter and of the audit-chain heads is shared. "201 only after commit" holds for every tip.

If a batch fails, its tips are retried one by one, so a single bad tip fails alone.

On SQLite a batch of plain tips is written through a synchronous engine in one worker-thread call: through
aiosqlite every statement is a thread hop, and those hops, not SQLite, were most of the cost of a batch.
Batches whose tips carry channel writes (``also``, e.g. the mailbox's records) go through the async session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from service.audit import service as audit_service
from service.intake.service import register_batch_sync, register_prepared
from service.platform.db import id_batch

log = logging.getLogger("tipline.intake")

MAX_BATCH = 64
_shuffle = secrets.SystemRandom().shuffle


# Writes a channel needs in the same transaction as its tip (e.g. the mailbox's dedupe record), given the
# session and the registered tip; they run after the batch's registrations, before its commit. A hook may
# return audit entries (``audit_service.PendingEntry``): the batch appends them all with one ``record_many``
# (one lock per chain), and a hook that only adds rows without flushing costs no round trip of its own —
# the rows go out in the commit's flush, where a conflict fails the batch and the retry one by one.
AlsoWrite = Callable[[Any, Any], Awaitable[list[Any] | None]]


@dataclass
class _Job:
    prepared: object  # PreparedTip
    also: AlsoWrite | None = None
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class IntakeBatcher:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        runtime: object,
        *,
        sqlite_writer: sessionmaker[Session] | None = None,
    ):
        self._session_factory = session_factory
        self._runtime = runtime
        self._sqlite_writer = sqlite_writer
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, prepared: object, *, also: AlsoWrite | None = None) -> object:
        """Register one prepared tip (and ``also``'s writes); returns its SubmittedTip once committed."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="intake-writer")
        job = _Job(prepared, also)
        await self._queue.put(job)
        return await job.done

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [job for job in batch if not job.done.cancelled()]
            if not batch:
                continue
            try:
                await self._commit(batch)
            except Exception:  # noqa: BLE001 - each tip is retried alone below
                if len(batch) == 1:
                    self._fail(batch[0])
                    continue
                for job in batch:
                    try:
                        await self._commit([job])
                    except Exception:  # noqa: BLE001
                        self._fail(job)

    async def _commit(self, batch: list[_Job]) -> None:
        # Not in arrival order: the channels' own rows and audit entries (``also``) follow this order, and
        # nothing in the database may tell who of one batch came first. Each job keeps its own result.
        batch = list(batch)
        _shuffle(batch)
        prepared = [job.prepared for job in batch]
        if self._sqlite_writer is not None and all(job.also is None for job in batch):
            results = await asyncio.to_thread(
                register_batch_sync, self._sqlite_writer, self._runtime, prepared
            )
        else:
            # The channels' rows (web-form attachments) share the batch's id stamp (``db.new_id``).
            with id_batch():
                async with self._session_factory() as session:
                    results = await register_prepared(session, runtime=self._runtime, prepared=prepared)
                    entries: list[Any] = []
                    for job, result in zip(batch, results, strict=True):
                        if job.also is not None:
                            entries.extend(await job.also(session, result) or ())
                    if entries:
                        await audit_service.record_many(session, entries)
                    await session.commit()
        for job, result in zip(batch, results, strict=True):
            if not job.done.done():
                job.done.set_result(result)

    @staticmethod
    def _fail(job: _Job) -> None:
        import sys

        exc = sys.exc_info()[1]
        log.warning("intake registration failed: %s", type(exc).__name__)
        if not job.done.done():
            job.done.set_exception(exc if exc is not None else RuntimeError("registration failed"))
