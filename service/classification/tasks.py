"""Classification background work: near-duplicate links for newly registered clues."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.classification import service as classification_service
from service.jobs.registry import JobContext, tasks


@tasks.periodic(
    classification_service.NEAR_DUPLICATE_TASK, every=timedelta(seconds=10), lease=timedelta(minutes=5)
)
async def near_duplicates(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Sign the queued clues' masked texts (the worker holds the case key), index them and link
    near-duplicates; never merges. One run every ten seconds takes the whole queue in chunks' worth, so
    intake adds a queue row, not a job, per batch."""
    await classification_service.link_pending_near_duplicates(ctx.runtime)
