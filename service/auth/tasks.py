"""Auth housekeeping run by the job worker."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from service.auth import sessions as session_service
from service.jobs.registry import JobContext, tasks

log = logging.getLogger("tipline.auth")


@tasks.periodic("auth.prune_login_throttle", every=timedelta(hours=1))
async def prune_login_throttle(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Failed logins are counted per typed name, account or not, so ``login_throttle`` would otherwise
    keep a row for every name anyone ever typed. Only idle rows go (see ``prune_login_throttle``)."""
    removed = await session_service.prune_login_throttle(
        ctx.session, settings=ctx.runtime.settings, now=ctx.scheduled_for
    )
    if removed:
        log.info("login throttle pruned", extra={"rows": removed})
