"""The staff desk: what needs doing now, per role, as counts and as list filters.

"Overdue" and "near due" mean the same everywhere (the meeting brief, the ledger, the home page): a clue
whose clock runs (an open status, not shelved as 暂存待查) with its deadline passed, or falling within
``NEAR_DUE_DAYS``. Counts only: nothing here opens sealed content, so nothing here is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.permissions import Action, is_allowed
from service.auth.service import Principal
from service.platform.timeutil import as_utc, utcnow
from service.registry.lifecycle import OPEN_STATUSES, Status
from service.registry.models import Clue, ClueState, TransferRequest
from service.registry.service import ClueFilters, count_clues
from service.registry.supervision import contact_overdue
from service.registry.transfer_requests import PENDING

NEAR_DUE_DAYS = 3  # as stats.AT_RISK_DAYS: an open clue due within three days is at risk
DUE_KINDS = ("overdue", "near")
OPEN = tuple(s.value for s in OPEN_STATUSES)


def due_window(due: str | None, now: datetime) -> dict[str, Any]:
    """``ClueFilters`` fields for "overdue" or "near due" (anything else: no restriction)."""
    if due == "overdue":
        return {"statuses": OPEN, "exclude_shelved": True, "due_before": now}
    if due == "near":
        return {
            "statuses": OPEN,
            "exclude_shelved": True,
            "due_from": now,
            "due_before": now + timedelta(days=NEAR_DUE_DAYS),
        }
    return {}


def due_state(clue: Clue, state: ClueState | None, now: datetime) -> str | None:
    """'overdue', 'near' or None for one clue (shelved and closed clues have no running clock)."""
    if clue.status not in OPEN or (state is not None and state.disposal_method == "shelve"):
        return None
    due = as_utc(clue.due_at)
    if due < now:
        return "overdue"
    if due < now + timedelta(days=NEAR_DUE_DAYS):
        return "near"
    return None


async def states_of(session: AsyncSession, clue_ids: list[str]) -> dict[str, ClueState]:
    if not clue_ids:
        return {}
    rows = await session.execute(select(ClueState).where(ClueState.clue_id.in_(clue_ids)))
    return {s.clue_id: s for s in rows.scalars()}


async def desk_counts(
    session: AsyncSession, *, principal: Principal, now: datetime | None = None
) -> dict[str, int]:
    """The figures that matter to the caller's roles. Supervisors: ``new`` (registered, not yet triaged),
    ``unassigned`` (open, nobody assigned), ``near_due``, ``overdue``, ``awaiting_approval`` (transfer
    requests to decide), ``contact_overdue`` (concluded clues whose 回访 or objection answer is overdue).
    Investigators: ``mine`` (open clues assigned to them), ``mine_near_due``,
    ``mine_overdue``."""
    now = now or utcnow()
    counts: dict[str, int] = {}
    roles = principal.roles
    if is_allowed(roles, Action.list_all_clues):
        counts["new"] = await count_clues(session, filters=ClueFilters(status=Status.registered.value))
        counts["unassigned"] = await count_clues(session, filters=ClueFilters(statuses=OPEN, unassigned=True))
        counts["near_due"] = await count_clues(session, filters=ClueFilters(**due_window("near", now)))
        counts["overdue"] = await count_clues(session, filters=ClueFilters(**due_window("overdue", now)))
    if is_allowed(roles, Action.decide_clue):
        pending = select(func.count()).select_from(TransferRequest).where(TransferRequest.status == PENDING)
        counts["awaiting_approval"] = int(await session.scalar(pending) or 0)
    if is_allowed(roles, Action.supervise_clue):
        follow_up, objection = contact_overdue()
        late = select(func.count()).select_from(follow_up.union(objection).subquery())
        counts["contact_overdue"] = int(await session.scalar(late) or 0)
    if is_allowed(roles, Action.list_assigned_clues):
        mine = principal.staff_id
        counts["mine"] = await count_clues(session, filters=ClueFilters(statuses=OPEN), assignee_id=mine)
        counts["mine_near_due"] = await count_clues(
            session, filters=ClueFilters(**due_window("near", now)), assignee_id=mine
        )
        counts["mine_overdue"] = await count_clues(
            session, filters=ClueFilters(**due_window("overdue", now)), assignee_id=mine
        )
    return counts
