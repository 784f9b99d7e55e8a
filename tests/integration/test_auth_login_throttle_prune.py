"""The periodic job that keeps ``login_throttle`` from growing with every typed name (both databases)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from service.auth import sessions as session_service
from service.auth.login_models import LoginThrottle
from service.jobs.registry import Registry, load_task_modules
from service.jobs.worker import Worker
from service.platform.timeutil import utcnow
from tests.helpers.app import Harness, unique


async def _rows(harness: Harness, keys: list[str]) -> set[str]:
    async with harness.runtime.session_factory() as session:
        found = await session.execute(select(LoginThrottle.name_key).where(LoginThrottle.name_key.in_(keys)))
        return set(found.scalars())


async def test_idle_rows_go_locked_and_counting_rows_stay(harness: Harness) -> None:
    settings = harness.runtime.settings
    now = utcnow()
    long_ago = now - timedelta(seconds=settings.staff_lockout_max_seconds + 60)
    rows = {
        "old_streak": dict(failures=3, last_failure_at=long_ago, locked_until=None),
        "reset_by_success": dict(failures=0, last_failure_at=now - timedelta(minutes=1), locked_until=None),
        "never_failed": dict(failures=0, last_failure_at=None, locked_until=None),
        "lock_ended_long_ago": dict(failures=9, last_failure_at=long_ago, locked_until=long_ago),
        "counting": dict(failures=2, last_failure_at=now - timedelta(minutes=5), locked_until=None),
        "locked_now": dict(failures=9, last_failure_at=long_ago, locked_until=now + timedelta(hours=1)),
        "lock_ended_recently": dict(
            failures=6, last_failure_at=now - timedelta(minutes=10), locked_until=now - timedelta(minutes=1)
        ),
    }
    keys = {name: unique(name)[-64:] for name in rows}
    async with harness.runtime.session_factory() as session:
        for name, values in rows.items():
            session.add(LoginThrottle(name_key=keys[name], **values))
        await session.commit()
    async with harness.runtime.session_factory() as session:
        removed = await session_service.prune_login_throttle(session, settings=settings, now=now)
        await session.commit()
    assert removed >= 4
    kept = await _rows(harness, list(keys.values()))
    assert kept == {keys["counting"], keys["locked_now"], keys["lock_ended_recently"]}


async def test_the_worker_runs_the_registered_job(harness: Harness) -> None:
    task = load_task_modules().get("auth.prune_login_throttle")
    assert task is not None and task.every == timedelta(hours=1)
    only = Registry()  # just this task: other periodic work must not run at a far-future time
    only.add(task)
    key = unique("typed-name")
    async with harness.runtime.session_factory() as session:
        session.add(LoginThrottle(name_key=key, failures=0))
        await session.commit()
    when = utcnow() + timedelta(days=3650)  # a slot no other test has used
    assert await Worker(harness.runtime, registry=only, worker_id=unique("w")).run_once(when) == 1
    assert await _rows(harness, [key]) == set()
