"""Registry background work: overdue notices (催办单) with content-free notifications, and the
near-duplicate signatures computed off intake's hot path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from service.jobs.registry import JobContext, tasks
from service.notify import service as notify_service
from service.registry import supervision
from service.registry.models import ClueReminder


@tasks.periodic("registry.deadline_alerts", every=timedelta(minutes=15))
async def deadline_alerts(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Issue a notice for every open clue past its deadline, and tell its handler and the supervisors
    (a link only: no number, no category, no text)."""

    issued = await supervision.issue_overdue_reminders(ctx.session)
    if not issued:
        return
    recent = (
        await ctx.session.execute(
            select(ClueReminder.clue_id, ClueReminder.assignee_id)
            .order_by(ClueReminder.issued_at.desc())
            .limit(issued)
        )
    ).all()
    for clue_id, assignee_id in recent:
        path = f"/staff/registry/clues/{clue_id}"
        if assignee_id:
            await notify_service.notify_staff(
                ctx.session, runtime=ctx.runtime, staff_ids=[assignee_id], event="deadline_near", path=path
            )
    await notify_service.notify_supervisors(
        ctx.session, runtime=ctx.runtime, event="deadline_near", path="/staff/registry?status="
    )
