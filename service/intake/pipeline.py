"""The intake pipeline: preparing tips (personal-data masking, classification, sealing — the CPU part of
intake) and, on the embedded default, registering them, in worker processes beside the event loop.

This is the one intake entry: every channel turns what arrived into a ``Submission`` and calls it.

- ``runtime.intake.submit(submission, actor=..., also=...)``: a report registered in a transaction of its
  own; ``also`` adds the channel's own writes (a mail record, a call's addition) to that transaction. On
  SQLite the worker prepares a whole batch and registers it in one transaction on its own write
  connection; the server process is left with HTTP. On PostgreSQL the worker prepares and the server's
  group commit (``IntakeBatcher``) registers.
- ``runtime.intake.prepare(submission, actor=...)`` then ``runtime.intake.register(prepared, also=...)``:
  the same in two steps, for a channel that must know the outcome of preparing before it writes.

Submissions that arrive while a worker is busy wait together and go to it as one batch: one pipe round
trip and one commit for many tips. Workers hold what the intake role holds — the public keys and the lookup
secret, never a private key — loaded from the same settings, and follow the server process's taxonomy (a
reload there reaches them with the next batch). Submissions travel to a worker over a pipe, in memory only;
what comes back is sealed, or a receipt. "201 only after commit" holds: the worker answers after its commit.

With no workers configured, or none to be had, tips are prepared in the server process, so intake never
depends on the pool. If a worker dies while it holds a batch, that batch's commit may or may not have
happened; its reporters get a clear temporary error (``503``) and nothing is registered twice behind their
backs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.classification import classifier
from service.intake.batching import AlsoWrite, IntakeBatcher
from service.intake.service import PreparedTip, Submission, SubmittedTip, prepare_tip, register_batch_sync
from service.platform.crypto.keys import KeyRing, sealing_batch
from service.platform.db import create_sqlite_writer_engine
from service.platform.errors import DomainError, TemporarilyUnavailable
from service.platform.runtime import Runtime, derive_lookup_key, session_info, with_data_key_window
from service.platform.settings import Settings
from service.platform.workers import WorkerPool, WorkerUnavailable, default_worker_count, mergeable

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("tipline.intake")

MAX_BATCH = 32
# Batches handed to each worker at once: the next one waits in its queue, so it never idles between them.
IN_FLIGHT_PER_WORKER = 3
PREPARE, SUBMIT = "prepare", "submit"


def intake_worker_count(settings: Settings) -> int:
    if settings.intake_workers is not None:
        return settings.intake_workers
    return default_worker_count() if (os.cpu_count() or 1) > 1 else 0


def unavailable() -> TemporarilyUnavailable:
    return TemporarilyUnavailable(
        "系统暂时无法处理，请稍后再试。", message_en="Temporarily unavailable; retry later."
    )


@dataclass
class _Job:
    kind: str
    submission: Submission
    actor: str
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class IntakePipeline:
    def __init__(self, runtime: Runtime, *, workers: int) -> None:
        self._runtime = runtime
        self.workers = workers
        # On SQLite a worker writes through its own connection; PostgreSQL registrations stay here, where
        # the group commit shares one connection among many concurrent batches.
        self.worker_registers = runtime.settings.is_sqlite
        self._pool = (
            WorkerPool(
                workers,
                initializer=_start_worker,
                initargs=(runtime.settings, runtime.keys.public_documents(), runtime.lookup_secret),
            )
            if workers
            else None
        )
        self._batcher = IntakeBatcher(runtime.session_factory, runtime, sqlite_writer=runtime.sqlite_writer)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._dispatchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the workers now (keys, taxonomy and database loaded), not when the first report arrives."""
        if self._pool is not None:
            with contextlib.suppress(WorkerUnavailable):
                await self._pool.run(_ready, classifier.taxonomy_in_force())

    def worker_pids(self) -> list[int]:
        return self._pool.pids() if self._pool is not None else []

    async def prepare(self, submission: Submission, *, actor: str) -> PreparedTip:
        """Validate, mask, classify and seal one submission (raises ``Invalid`` for a bad one)."""
        if self._pool is None:
            return _prepare_here(self._runtime, submission, actor)
        return await self._enqueue(PREPARE, submission, actor)

    async def submit(
        self, submission: Submission, *, actor: str, also: AlsoWrite | None = None
    ) -> SubmittedTip:
        """Prepare and register one submission in a transaction of its own; returns once committed."""
        if self._pool is not None and self.worker_registers and also is None:
            return await self._enqueue(SUBMIT, submission, actor)
        prepared = await self.prepare(submission, actor=actor)
        return await self.register(prepared, also=also)

    async def register(self, prepared: PreparedTip, *, also: AlsoWrite | None = None) -> SubmittedTip:
        """Register a prepared tip through the group commit, with ``also``'s writes in its transaction."""
        return await self._batcher.submit(prepared, also=also)  # type: ignore[return-value]

    async def close(self) -> None:
        for task in self._dispatchers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dispatchers = []
        if self._pool is not None:
            self._pool.shutdown()
        await self._batcher.close()

    async def _enqueue(self, kind: str, submission: Submission, actor: str) -> Any:
        self._dispatchers = [task for task in self._dispatchers if not task.done()]
        while len(self._dispatchers) < IN_FLIGHT_PER_WORKER * self.workers:
            self._dispatchers.append(asyncio.create_task(self._dispatch(), name="intake-pipeline"))
        job = _Job(kind, submission, actor)
        await self._queue.put(job)
        return await job.done

    async def _dispatch(self) -> None:
        """Take whatever has gathered, hand it to a worker as one batch, answer each job."""
        assert self._pool is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [job for job in batch if not job.done.cancelled()]
            if not batch:
                continue
            items = [(job.kind, job.submission, job.actor) for job in batch]
            try:
                results = await self._pool.run(_run_batch, classifier.taxonomy_in_force(), items)
            except WorkerUnavailable as exc:
                log.warning("intake worker unavailable: preparing in the server process")
                results = [await self._here(job, committed_unknown=exc.started) for job in batch]
            except Exception as exc:  # noqa: BLE001 - e.g. a taxonomy the worker cannot load: fail the batch
                log.warning("intake worker failed a batch: %s", type(exc).__name__)
                results = [unavailable()] * len(batch)
            for job, result in zip(batch, results, strict=True):
                if job.done.done():
                    continue
                if isinstance(result, BaseException):
                    job.done.set_exception(result)
                else:
                    job.done.set_result(result)

    async def _here(self, job: _Job, *, committed_unknown: bool) -> Any:
        """A job no worker finished, done in this process — except a registration a dead worker may have
        committed: never registered a second time behind the reporter's back, it is answered 503."""
        if job.kind == SUBMIT and committed_unknown:
            return unavailable()
        prepared = _prepared_or_error(self._runtime, job.submission, job.actor)
        if job.kind == PREPARE or isinstance(prepared, Exception):
            return prepared
        try:
            return await self.register(prepared)
        except Exception as exc:  # noqa: BLE001 - answered to this job alone
            return exc


def _prepare_here(sealing: Any, submission: Submission, actor: str) -> PreparedTip:
    return prepare_tip(sealing, submission, actor=actor)


def _prepared_or_error(sealing: Any, submission: Submission, actor: str) -> PreparedTip | Exception:
    try:
        return _prepare_here(sealing, submission, actor)
    except DomainError as exc:  # a bad submission gets its own answer (422); the others go on
        return exc
    except Exception as exc:  # noqa: BLE001
        return _portable(exc)


def _portable(exc: Exception) -> Exception:
    """What may cross the pipe: our own errors, or only the type of any other (a database error's message
    and parameters could carry sealed or personal data, and may not even unpickle)."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, DBAPIError | OSError):
        return unavailable()
    return RuntimeError(f"intake failed: {type(exc).__name__}")


# --- In a worker process --------------------------------------------------------------------------------


@dataclass
class _Worker:
    """What a worker holds: the intake role's keys (see ``platform.runtime.Sealing``) and, on SQLite, its
    own write connection."""

    settings: Settings
    keys: KeyRing
    lookup_secret: bytes
    writer: sessionmaker[Session] | None

    def lookup_key(self, label: str) -> bytes:
        return derive_lookup_key(self.lookup_secret, label)


_worker: _Worker | None = None


def _start_worker(
    settings: Settings, public_keys: dict[str, dict[str, object] | None], lookup_secret: bytes
) -> None:
    """The server process's own public keys and lookup secret (not re-read from disk: the worker seals
    exactly as the server would), and on SQLite a write connection of its own."""
    global _worker
    writer = None
    if settings.is_sqlite:
        engine = create_sqlite_writer_engine(settings.effective_database_url)
        writer = sessionmaker(engine, expire_on_commit=False, autoflush=False, info=session_info(settings))
    keys = with_data_key_window(KeyRing.from_public_documents(public_keys), settings)
    _worker = _Worker(settings, keys, lookup_secret, writer)
    classifier.load_name_segmenter()  # not on the first tip: loading takes seconds


def _ready(taxonomy: tuple[Path, int]) -> bool:
    classifier.follow_taxonomy(taxonomy)
    return _worker is not None


def _run_batches(calls: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Batches that waited in the worker together: prepared and registered as one (one commit, one KEM
    operation per key); each batch gets its own results back."""
    items = [item for _, batch in calls for item in batch]
    results = _run_batch(calls[-1][0], items)  # the newest taxonomy generation
    answers, start = [], 0
    for _, batch in calls:
        answers.append(results[start : start + len(batch)])
        start += len(batch)
    return answers


@mergeable(_run_batches)
def _run_batch(taxonomy: tuple[Path, int], items: list[tuple[str, Submission, str]]) -> list[Any]:
    """Prepare every item; register the ``submit`` ones in one transaction (one by one if that fails, so a
    bad tip fails alone). Returns, per item, a PreparedTip, a SubmittedTip or an error."""
    assert _worker is not None
    classifier.follow_taxonomy(taxonomy)
    with sealing_batch():  # one KEM operation per public key for the whole batch
        results = [_prepared_or_error(_worker, submission, actor) for _, submission, actor in items]
    to_register = [
        i for i, (kind, _, _) in enumerate(items) if kind == SUBMIT and isinstance(results[i], PreparedTip)
    ]
    if not to_register:
        return results
    assert _worker.writer is not None
    try:
        registered = register_batch_sync(_worker.writer, _worker, [results[i] for i in to_register])
    except Exception as exc:  # noqa: BLE001 - answered below
        if len(to_register) == 1 or isinstance(exc, OperationalError):
            # Alone already, or the database is unavailable (locked past its timeout, gone): retrying each
            # tip would only make every reporter wait that long again.
            for i in to_register:
                results[i] = _portable(exc)
            return results
        for i in to_register:  # a bad tip (e.g. a unique index) fails alone; the others are committed
            try:
                (results[i],) = register_batch_sync(_worker.writer, _worker, [results[i]])
            except Exception as alone:  # noqa: BLE001
                results[i] = _portable(alone)
        return results
    for i, submitted in zip(to_register, registered, strict=True):
        results[i] = submitted
    return results
