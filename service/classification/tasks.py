"""Classification background work: near-duplicate links for newly registered clues."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.classification import service as classification_service
from service.jobs.registry import JobContext, tasks


@tasks.task(classification_service.NEAR_DUPLICATE_TASK, max_attempts=5, lease=timedelta(minutes=5))
async def near_duplicates(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Sign the masked texts (the worker holds the case key) and link near-duplicates; never merges."""
    clue_ids = [str(c) for c in payload.get("clue_ids", [])]
    await classification_service.link_near_duplicates(ctx.session, runtime=ctx.runtime, clue_ids=clue_ids)
