"""Tasks the jobs package runs itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.jobs import service as jobs_service
from service.jobs.registry import JobContext, tasks

KEEP_DONE = timedelta(days=7)
KEEP_DEAD = timedelta(days=90)


@tasks.periodic("jobs.purge", every=timedelta(hours=1))
async def purge_finished_jobs(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Finished job rows are operational data only; keep dead ones long enough to investigate."""
    await jobs_service.purge_finished(
        ctx.session, done_before=ctx.scheduled_for - KEEP_DONE, dead_before=ctx.scheduled_for - KEEP_DEAD
    )
