"""Periodic security work: signed audit checkpoints and unusual-reading alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.audit import checkpoints
from service.jobs.registry import JobContext, tasks

ALERT_PERIOD = timedelta(hours=1)
ALERT_THRESHOLD = 50  # distinct clues one account reads or exports in an hour


@tasks.periodic("audit.checkpoint", every=timedelta(hours=1))
async def sign_checkpoint(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Sign the chain heads every hour; `tipline audit checkpoint --out` exports one on demand."""
    settings = ctx.runtime.settings
    key = checkpoints.load_or_create_signing_key(settings.effective_keys_dir, settings.crypto_suite)
    await checkpoints.create_checkpoint(ctx.session, key=key)


@tasks.periodic("audit.reading_alerts", every=ALERT_PERIOD)
async def reading_alerts(ctx: JobContext, payload: dict[str, Any]) -> None:
    await checkpoints.raise_reading_alerts(
        ctx.session, now=ctx.scheduled_for, period=ALERT_PERIOD, threshold=ALERT_THRESHOLD
    )
