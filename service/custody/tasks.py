"""Periodic security work: signed audit checkpoints and unusual-reading alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.audit import checkpoints
from service.jobs.registry import JobContext, tasks

ALERT_PERIOD = timedelta(hours=1)
ALERT_THRESHOLD = 50  # distinct clues one account reads or exports in an hour


@tasks.periodic("audit.checkpoint", every=timedelta(minutes=1))
async def sign_checkpoint(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Looks every minute; signs the chain heads into a new file of the checkpoint directory once the newest
    is ``TIPLINE_AUDIT_CHECKPOINT_MINUTES`` old. `tipline audit checkpoint --out` exports one on demand."""
    settings = ctx.runtime.settings
    key = checkpoints.load_or_create_signing_key(settings.effective_keys_dir, settings.crypto_suite)
    await checkpoints.take_checkpoint_if_due(
        ctx.session,
        key=key,
        directory=settings.effective_audit_checkpoint_dir,
        every=timedelta(minutes=settings.audit_checkpoint_minutes),
        now=ctx.scheduled_for,
    )


@tasks.periodic("audit.reading_alerts", every=ALERT_PERIOD)
async def reading_alerts(ctx: JobContext, payload: dict[str, Any]) -> None:
    await checkpoints.raise_reading_alerts(
        ctx.session, now=ctx.scheduled_for, period=ALERT_PERIOD, threshold=ALERT_THRESHOLD
    )
