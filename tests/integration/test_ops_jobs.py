"""The job loop on both databases: enqueue in a transaction, run, retry with backoff, die, periodic slots,
dedupe, lease takeover, fencing, and SKIP LOCKED with two workers on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from service.jobs import service as jobs_service
from service.jobs.models import Job
from service.jobs.registry import JobContext, Registry
from service.jobs.worker import Worker
from service.platform.timeutil import utcnow
from tests.helpers.app import unique


async def _job(harness, job_id: str) -> Job:  # type: ignore[no-untyped-def]
    async with harness.runtime.session_factory() as session:
        return (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()


async def _enqueue(harness, name: str, payload: dict[str, Any], **kw: Any) -> str | None:  # type: ignore[no-untyped-def]
    async with harness.runtime.session_factory() as session:
        job_id = await jobs_service.enqueue(session, task=name, payload=payload, **kw)
        await session.commit()
        return job_id


async def test_enqueued_job_runs_once_and_its_writes_commit_with_it(harness) -> None:  # type: ignore[no-untyped-def]
    registry, seen = Registry(), []
    name = unique("t")[:60]

    @registry.task(name)
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append((payload["n"], ctx.attempt))
        # A write in the job's own transaction: it commits together with "done".
        await jobs_service.enqueue(ctx.session, task=name + "-next", payload={}, registry=registry)

    job_id = await _enqueue(harness, name, {"n": 7}, registry=registry)
    worker = Worker(harness.runtime, registry=registry, worker_id="w1")
    assert await worker.run_one() == "done"
    assert seen == [(7, 1)]
    job = await _job(harness, job_id)
    assert (job.status, job.attempts, job.locked_by) == ("done", 1, None)
    async with harness.runtime.session_factory() as session:
        follow = (await session.execute(select(Job).where(Job.task == name + "-next"))).scalars().all()
    assert len(follow) == 1
    # Nothing else of ours is due (the follow-up task is not registered with this worker... it is not).
    assert await worker.run_one() is None


async def test_failure_rolls_back_retries_with_backoff_then_dies(harness) -> None:  # type: ignore[no-untyped-def]
    registry = Registry()
    name = unique("fail")

    @registry.task(name, max_attempts=2)
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        await jobs_service.enqueue(ctx.session, task=name + "-side", payload={})
        raise ValueError("secret content must not be stored")

    job_id = await _enqueue(harness, name, {}, registry=registry)
    worker = Worker(harness.runtime, registry=registry, worker_id="w1")
    assert await worker.run_one() == "queued"
    job = await _job(harness, job_id)
    assert job.last_error == "ValueError" and job.attempts == 1
    assert job.run_at > utcnow() + timedelta(seconds=5)  # backoff
    assert await worker.run_one() is None  # not due yet
    assert await worker.run_one(now=utcnow() + timedelta(minutes=1)) == "dead"
    job = await _job(harness, job_id)
    assert (job.status, job.attempts) == ("dead", 2)
    async with harness.runtime.session_factory() as session:
        side = (await session.execute(select(Job).where(Job.task == name + "-side"))).scalars().all()
    assert side == []  # the failed attempts' writes were rolled back
    assert "secret" not in (job.last_error or "")


async def test_dedupe_key_and_periodic_slots(harness) -> None:  # type: ignore[no-untyped-def]
    registry, runs = Registry(), []
    name = unique("tick")

    @registry.periodic(name, every=timedelta(hours=1))
    async def tick(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(ctx.scheduled_for)

    key = unique("k")
    assert await _enqueue(harness, name + "-x", {}, dedupe_key=key) is not None
    assert await _enqueue(harness, name + "-x", {}, dedupe_key=key) is None

    now = utcnow()
    first, second = (
        Worker(harness.runtime, registry=registry, worker_id="a"),
        Worker(harness.runtime, registry=registry, worker_id="b"),
    )
    assert await first.run_once(now) == 1
    assert await second.run_once(now) == 0  # same slot: already done by the first worker
    assert await second.run_once(now + timedelta(hours=1)) == 1
    assert len(runs) == 2 and runs[1] - runs[0] == timedelta(hours=1)
    assert runs[0] == jobs_service.slot_start(timedelta(hours=1), now)


async def test_expired_lease_is_taken_over_and_the_old_worker_cannot_finish(harness) -> None:  # type: ignore[no-untyped-def]
    registry = Registry()
    name = unique("lease")
    release, started = asyncio.Event(), asyncio.Event()
    calls = []

    @registry.task(name, lease=timedelta(seconds=30))
    async def slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            started.set()
            await release.wait()

    job_id = await _enqueue(harness, name, {}, registry=registry)
    stuck = Worker(harness.runtime, registry=registry, worker_id="stuck")
    first = asyncio.create_task(stuck.run_one())
    await asyncio.wait_for(started.wait(), timeout=10)
    rescuer = Worker(harness.runtime, registry=registry, worker_id="rescuer")
    assert await rescuer.run_one() is None  # lease still valid
    assert await rescuer.run_one(now=utcnow() + timedelta(seconds=31)) == "done"
    release.set()
    assert await first == "lost"  # fenced: the stuck worker's completion is refused
    job = await _job(harness, job_id)
    assert (job.status, job.attempts) == ("done", 2)


async def test_two_workers_share_a_queue_without_running_a_job_twice(harness) -> None:  # type: ignore[no-untyped-def]
    registry, ran = Registry(), []
    name = unique("many")

    @registry.task(name)
    async def work(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(payload["i"])
        await asyncio.sleep(0.005)

    async with harness.runtime.session_factory() as session:
        for i in range(20):
            await jobs_service.enqueue(session, task=name, payload={"i": i}, registry=registry)
        await session.commit()
    workers = [Worker(harness.runtime, registry=registry, worker_id=f"w{i}") for i in range(3)]
    counts = await asyncio.gather(*(w.run_once() for w in workers))
    assert sum(counts) == 20
    assert sorted(ran) == list(range(20))


async def test_builtin_purge_is_registered_and_removes_old_finished_jobs(harness) -> None:  # type: ignore[no-untyped-def]
    from service.jobs.registry import load_task_modules

    assert "jobs.purge" in load_task_modules().names()
    name = unique("old")
    job_id = await _enqueue(harness, name, {})
    async with harness.runtime.session_factory() as session:
        job = await session.get(Job, job_id)
        job.status, job.finished_at = "done", utcnow() - timedelta(days=30)
        await session.commit()
    async with harness.runtime.session_factory() as session:
        removed = await jobs_service.purge_finished(
            session, done_before=utcnow() - timedelta(days=7), dead_before=utcnow() - timedelta(days=90)
        )
        await session.commit()
    assert removed >= 1
    async with harness.runtime.session_factory() as session:
        assert await session.get(Job, job_id) is None
