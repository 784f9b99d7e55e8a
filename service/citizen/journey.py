"""Where a report stands, in plain words, and what happens next and by when.

A report on the web is submitted (已提交) and received (已收到); it is never "accepted" (已受理) here: that
is a formal decision with its own notice to real-name reporters. The time limits are the deadline rules'
defaults (``registry.deadlines.DEFAULT_LIMITS``, on the official working-day calendar): the public side may
not read the configured rules (on PostgreSQL its role sees only the receipt's own clue), so a committee that
configures other limits should change these words too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.intake.models import Receipt
from service.platform.timeutil import LOCAL, as_utc
from service.registry.deadlines import DEFAULT_LIMITS, Stage

# Registry status -> the stage a reporter reads (the words are in the templates, translated).
STAGES = {
    "registered": "received",
    "triaged": "received",
    "transferred": "handling",
    "verifying": "handling",
    "disposed": "handling",
    "sent_on": "handling",
    "referred": "referred",
    "concluded": "concluded",
    "archived": "concluded",
}


@dataclass(frozen=True)
class Timeline:
    received: datetime  # local time
    acceptance_notice_by: datetime  # a real-name reporter is told by then whether it was accepted
    acceptance_notice_days: int
    disposal_by: datetime  # a disposal proposal is due by then
    outcome_notice_days: int  # after closing, a real-name reporter is told the outcome within

    @classmethod
    def from_received(cls, received: datetime) -> Timeline:
        notice = DEFAULT_LIMITS[Stage.acceptance_notice]
        return cls(
            received=as_utc(received).astimezone(LOCAL),
            acceptance_notice_by=notice.due(received).astimezone(LOCAL),
            acceptance_notice_days=notice.working_days or 0,
            disposal_by=DEFAULT_LIMITS[Stage.disposal].due(received).astimezone(LOCAL),
            outcome_notice_days=DEFAULT_LIMITS[Stage.outcome_feedback].working_days or 0,
        )


def stage(status: str, assignee_id: str | None) -> str:
    found = STAGES.get(status, "handling")
    return "handling" if found == "received" and assignee_id else found


async def received_at(session: AsyncSession, clue_id: str) -> datetime | None:
    """When the report arrived, as far as the receipt holder's side may read: its first receipt (a hotline
    code replaced on the web keeps the first one's date)."""
    first = await session.scalar(select(func.min(Receipt.created_at)).where(Receipt.clue_id == clue_id))
    return as_utc(first) if first is not None else None


def local_date(moment: datetime, lang: str) -> str:
    local = as_utc(moment).astimezone(LOCAL)
    return local.strftime("%Y-%m-%d") if lang == "en" else f"{local.year}年{local.month}月{local.day}日"


def local_datetime(moment: datetime, lang: str) -> str:
    local = as_utc(moment).astimezone(LOCAL)
    return f"{local_date(local, lang)} {local:%H:%M}"
