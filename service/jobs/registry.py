"""Registering background tasks: what a worker may run, and when.

Engineers add work with a decorator in their own domain's ``tasks.py`` and list that module in
``TASK_MODULES`` (the worker imports them at start)::

    from service.jobs.registry import JobContext, tasks

    @tasks.task("notify.send", max_attempts=8, lease=timedelta(minutes=2))
    async def send(ctx: JobContext, payload: dict[str, Any]) -> None:
        message = await ctx.session.get(OutboxMessage, payload["message_id"])
        ...                                   # flush, never commit: the worker commits your writes
                                              # together with marking the job done

    @tasks.periodic("registry.deadline_alerts", every=timedelta(minutes=15))
    async def deadline_alerts(ctx: JobContext, payload: dict[str, Any]) -> None: ...

and queue one-off work from any transaction with ``jobs_service.enqueue(session, task="notify.send",
payload={"message_id": m.id})`` — it commits (or vanishes) with the caller's own writes.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.platform.runtime import Runtime

# Modules that register tasks when imported. Add yours here (one line).
TASK_MODULES: list[str] = [
    "service.jobs.builtin",
    "service.notify.tasks",
    "service.mailbox.tasks",
    "service.registry.tasks",
    "service.custody.tasks",
    "service.auth.tasks",
    "service.classification.tasks",
    "service.attachments.tasks",
    "service.retention.tasks",
]


@dataclass(frozen=True)
class JobContext:
    """What a handler gets. ``session`` is inside the transaction that also marks the job done."""

    session: AsyncSession
    runtime: Runtime
    job_id: str
    attempt: int  # 1 on the first run
    scheduled_for: datetime  # the job's run_at (for a periodic task: the start of its slot)


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Task:
    name: str
    handler: Handler
    max_attempts: int
    lease: timedelta  # how long a worker owns a running job before another may take it over
    every: timedelta | None = None  # periodic: at most one run per slot of this length, across all workers


class Registry:
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def add(self, task: Task) -> Task:
        if not 0 < len(task.name) <= 64:
            raise ValueError("task names are 1 to 64 characters")
        existing = self._tasks.get(task.name)
        if existing is not None and existing.handler is not task.handler:
            raise ValueError(f"task {task.name!r} is registered twice")
        self._tasks[task.name] = task
        return task

    def task(
        self, name: str, *, max_attempts: int = 5, lease: timedelta = timedelta(minutes=5)
    ) -> Callable[[Handler], Handler]:
        """A queue: jobs are enqueued by callers, retried with backoff up to ``max_attempts``."""

        def decorate(handler: Handler) -> Handler:
            self.add(Task(name, handler, max_attempts, lease))
            return handler

        return decorate

    def periodic(
        self,
        name: str,
        *,
        every: timedelta,
        max_attempts: int = 3,
        lease: timedelta = timedelta(minutes=5),
    ) -> Callable[[Handler], Handler]:
        """Run once per ``every`` (slots aligned to the Unix epoch), on whichever worker gets there first."""
        if every < timedelta(seconds=1):
            raise ValueError("periodic tasks run at most once a second")

        def decorate(handler: Handler) -> Handler:
            self.add(Task(name, handler, max_attempts, lease, every))
            return handler

        return decorate

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def periodic_tasks(self) -> list[Task]:
        return [t for t in self._tasks.values() if t.every is not None]


tasks = Registry()  # the process-wide registry the worker runs


def load_task_modules() -> Registry:
    for module in TASK_MODULES:
        importlib.import_module(module)
    return tasks
