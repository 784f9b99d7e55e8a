"""The retention worker job (registered with ``service.jobs``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.attachments import orphans
from service.jobs.registry import JobContext, tasks
from service.platform.runtime import Runtime
from service.retention import service as retention_service


async def purge_expired(runtime: Runtime, *, now: datetime, batch: int = 100) -> list[str]:
    """Purge every expired, unheld clue: one transaction per clue (rows, keys and the audit entry together),
    then its files. Returns the purged clue ids."""
    async with runtime.session_factory() as session:
        expired = await retention_service.expired_clue_ids(
            session, retention_days=runtime.settings.retention_days, now=now, limit=batch
        )
    roots = orphans.blob_roots(runtime)
    for clue_id in expired:
        async with runtime.session_factory() as session:
            purged = await retention_service.purge_clue_rows(session, clue_id=clue_id, actor="system")
            await session.commit()
        # A crash here leaves files whose keys are gone; attachments.sweep_orphans removes them later.
        await retention_service.delete_blobs(roots, purged.blobs)
    if expired and runtime.engine.dialect.name == "sqlite":
        # secure_delete zeroes the freed pages in the database file; the WAL still holds the old page images
        # until a checkpoint copies the pages back and truncates it.
        # Outside any transaction (the engine's connections BEGIN IMMEDIATE), on the driver's connection.
        async with runtime.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return expired


@tasks.periodic("retention.purge", every=timedelta(hours=1))
async def purge(ctx: JobContext, payload: dict[str, Any]) -> None:
    await purge_expired(ctx.runtime, now=ctx.scheduled_for)
