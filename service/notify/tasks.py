"""Worker tasks of the outbox (registered with ``service.jobs``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.jobs.registry import JobContext, tasks
from service.notify import service as notify_service
from service.notify.sender import Sender, SmtpRelaySender

# Tests may replace this with a function returning a fake; production uses the configured relay.
sender_factory = SmtpRelaySender


@tasks.task(notify_service.SEND_TASK, max_attempts=notify_service.SEND_ATTEMPTS, lease=timedelta(minutes=2))
async def send_outbox_message(ctx: JobContext, payload: dict[str, Any]) -> None:
    sender: Sender = sender_factory(ctx.runtime.settings)
    await notify_service.deliver(
        ctx.session,
        runtime=ctx.runtime,
        outbox_id=str(payload["outbox_id"]),
        sender=sender,
        final_attempt=ctx.attempt >= notify_service.SEND_ATTEMPTS,
    )


@tasks.periodic("notify.daily_digest", every=timedelta(days=1))
async def daily_digest(ctx: JobContext, payload: dict[str, Any]) -> None:
    await notify_service.build_digests(ctx.session, now=ctx.scheduled_for)


@tasks.periodic("notify.expire_unsent", every=timedelta(hours=1))
async def expire_unsent(ctx: JobContext, payload: dict[str, Any]) -> None:
    await notify_service.expire_unsent(ctx.session, now=ctx.scheduled_for)
