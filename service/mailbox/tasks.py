"""Worker tasks of the mailbox channel (registered with ``service.jobs``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.jobs.registry import JobContext, tasks
from service.mailbox import service as mail_service


@tasks.periodic("mail.purge_filtered", every=timedelta(minutes=15))
async def purge_filtered(ctx: JobContext, payload: dict[str, Any]) -> None:
    await mail_service.purge_filtered(ctx.session, now=ctx.scheduled_for)
