"""The job table's operations: enqueue, claim with a lease, finish, fail.

Coordination is the database's: on PostgreSQL a claim is ``SELECT … FOR UPDATE SKIP LOCKED`` so any number
of workers share the queue without blocking each other; on SQLite every write transaction is
``BEGIN IMMEDIATE``, so claims are serialised (run a single worker there). Finishing is fenced on
``locked_by``: a worker whose lease ran out and was taken over cannot mark the job done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.jobs.models import Job
from service.jobs.registry import Registry, Task, tasks
from service.platform.db import new_id
from service.platform.timeutil import as_utc, utcnow

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
STATUSES = (QUEUED, RUNNING, DONE, DEAD)
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    task: str
    payload: dict[str, Any]
    attempt: int
    run_at: datetime


def _insert(session: AsyncSession | Session):  # type: ignore[no-untyped-def]
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def enqueue(session: AsyncSession, **job: Any) -> str | None:
    """Queue work inside the caller's transaction (see ``enqueue_sync`` for the arguments)."""
    return await session.run_sync(lambda sync_session: enqueue_sync(sync_session, **job))


def enqueue_sync(
    session: Session,
    *,
    task: str | Task,
    payload: dict[str, Any] | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int | None = None,
    registry: Registry = tasks,
) -> str | None:
    """Queue work inside the caller's transaction. ``payload`` holds ids only. Returns the job id, or None
    when a job with ``dedupe_key`` already exists (then nothing is added)."""
    name = task.name if isinstance(task, Task) else task
    known = task if isinstance(task, Task) else registry.get(name)
    attempts = max_attempts or (known.max_attempts if known else DEFAULT_MAX_ATTEMPTS)
    body = json.dumps(payload or {}, separators=(",", ":"), sort_keys=True)
    job_id = new_id()
    now = utcnow()
    statement = (
        _insert(session)(Job)
        .values(
            id=job_id,
            task=name,
            payload=body,
            status=QUEUED,
            run_at=as_utc(run_at) if run_at else now,
            attempts=0,
            max_attempts=attempts,
            dedupe_key=dedupe_key,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = session.execute(statement)
    return job_id if result.rowcount else None


def slot_start(every: timedelta, now: datetime) -> datetime:
    seconds = int(every.total_seconds())
    epoch = int(as_utc(now).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=as_utc(now).tzinfo)


async def schedule_periodic(session: AsyncSession, *, task: Task, now: datetime) -> str | None:
    """Make sure the current slot's job exists (one per slot, whichever worker inserts it first)."""
    assert task.every is not None
    start = slot_start(task.every, now)
    key = f"{task.name}@{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return await enqueue(session, task=task, run_at=start, dedupe_key=key)


async def claim(
    session: AsyncSession, *, worker_id: str, registry: Registry, now: datetime | None = None
) -> ClaimedJob | None:
    """Lease the oldest due job this worker can run (a known task), or None. The caller commits."""
    now = now or utcnow()
    names = registry.names()
    if not names:
        return None
    due = or_(
        and_(Job.status == QUEUED, Job.run_at <= now),
        and_(Job.status == RUNNING, Job.locked_until < now),  # a worker died holding it
    )
    query = select(Job).where(Job.task.in_(names), due).order_by(Job.run_at, Job.id).limit(1)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    while True:
        job = (await session.execute(query)).scalar_one_or_none()
        if job is None:
            return None
        task = registry.get(job.task)
        assert task is not None
        if job.attempts >= job.max_attempts:
            # Its last attempt's worker vanished: give up rather than loop on a job that kills workers.
            job.status, job.locked_by, job.locked_until = DEAD, None, None
            job.last_error, job.finished_at = "LeaseExpired", now
            await session.flush()
            continue
        job.status = RUNNING
        job.attempts += 1
        job.locked_by = worker_id
        job.locked_until = now + task.lease
        await session.flush()
        return ClaimedJob(job.id, job.task, json.loads(job.payload), job.attempts, as_utc(job.run_at))


async def finish(session: AsyncSession, *, job_id: str, worker_id: str) -> bool:
    """Mark done in the handler's transaction. False if the lease was lost (the caller must roll back)."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == RUNNING)
        .values(status=DONE, locked_by=None, locked_until=None, finished_at=utcnow(), last_error=None)
    )
    return result.rowcount == 1


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(3600, 10 * 2 ** (attempt - 1)))


async def fail(session: AsyncSession, *, job_id: str, worker_id: str, error: str) -> str | None:
    """Record a failed attempt: retry later, or ``dead`` after the last one. Returns the new status."""
    job = (
        await session.execute(select(Job).where(Job.id == job_id, Job.locked_by == worker_id))
    ).scalar_one_or_none()
    if job is None or job.status != RUNNING:
        return None
    now = utcnow()
    job.locked_by, job.locked_until, job.last_error = None, None, error[:128]
    if job.attempts >= job.max_attempts:
        job.status, job.finished_at = DEAD, now
    else:
        job.status, job.run_at = QUEUED, now + backoff(job.attempts)
    await session.flush()
    return job.status


async def purge_finished(session: AsyncSession, *, done_before: datetime, dead_before: datetime) -> int:
    result = await session.execute(
        delete(Job).where(
            or_(
                and_(Job.status == DONE, Job.finished_at < done_before),
                and_(Job.status == DEAD, Job.finished_at < dead_before),
            )
        )
    )
    return result.rowcount or 0


async def depths(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(task, status, count) for unfinished jobs: the queue depth metric."""
    from sqlalchemy import func

    rows = await session.execute(
        select(Job.task, Job.status, func.count())
        .where(Job.status.in_((QUEUED, RUNNING, DEAD)))
        .group_by(Job.task, Job.status)
    )
    return [(task, status, count) for task, status, count in rows.all()]
