"""Worker tasks of the attachment store (registered with ``service.jobs``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.attachments import orphans
from service.audit import service as audit_service
from service.jobs.registry import JobContext, tasks
from service.platform.blobs import LocalBlobStore


@tasks.periodic("attachments.sweep_orphans", every=timedelta(minutes=30))
async def sweep_orphans(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Delete blobs that no row refers to, once they are older than ``orphans.ORPHAN_MIN_AGE``."""
    removed = 0
    for root in orphans.blob_roots(ctx.runtime):
        if root.is_dir():
            removed += await orphans.sweep_orphans(
                ctx.session, store=LocalBlobStore(root), now=ctx.scheduled_for
            )
    if removed:
        await audit_service.record(
            ctx.session,
            actor=audit_service.SYSTEM_ACTOR,
            action="attachments.orphans_deleted",
            object_type="blob_store",
            object_id="blobs",
            details={"deleted": removed},
        )
