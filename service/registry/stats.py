"""Inspection figures (督导检查): counts by category, source, channel, unit and status; overdue and at-risk
clues per unit and handler; handling times. Aggregates only: no content, no identity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.models import Staff, Unit
from service.platform.timeutil import LOCAL, utcnow
from service.registry.lifecycle import OPEN_STATUSES
from service.registry.models import Clue, ClueCategory, ClueState, ClueTransition, Consultation

AT_RISK_DAYS = 3  # an open clue due within this many days is at risk


def _window(query: Select[Any], received_from: datetime | None, received_to: datetime | None) -> Select[Any]:
    if received_from:
        query = query.where(Clue.received_at >= received_from)
    if received_to:
        query = query.where(Clue.received_at < received_to)
    return query


async def _no_jit(session: AsyncSession) -> None:
    """PostgreSQL's JIT compiles these short aggregate queries for longer than they run."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))


async def overview(
    session: AsyncSession, *, received_from: datetime | None = None, received_to: datetime | None = None
) -> dict[str, Any]:
    """Counts by status, source, channel, handling unit and category.

    One GROUP BY over the four plain dimensions (a few hundred combinations, read by an index-only scan of
    ``ix_clues_stats``), folded into the four breakdowns here; categories from their own table."""
    await _no_jit(session)
    units = dict((await session.execute(select(Unit.id, Unit.name))).all())
    dimensions = (Clue.status, Clue.source, Clue.channel, Clue.handling_unit_id)
    query = _window(select(*dimensions, func.count()).select_from(Clue), received_from, received_to)
    result: dict[str, dict[str, int]] = {"by_status": {}, "by_source": {}, "by_channel": {}, "by_unit": {}}
    for status, source, channel, unit_id, count in (await session.execute(query.group_by(*dimensions))).all():
        for name, key in (
            ("by_status", status),
            ("by_source", source),
            ("by_channel", channel),
            ("by_unit", units.get(unit_id, "未分办") if unit_id else "未分办"),
        ):
            result[name][key] = result[name].get(key, 0) + count
    category_query = select(ClueCategory.category, func.count())
    if received_from or received_to:
        category_query = _window(
            category_query.join(Clue, Clue.id == ClueCategory.clue_id), received_from, received_to
        )
    result["by_category"] = dict(
        (await session.execute(category_query.group_by(ClueCategory.category))).all()
    )
    return {"total": sum(result["by_status"].values()), **result}


async def trends(
    session: AsyncSession, *, received_from: datetime | None = None, received_to: datetime | None = None
) -> dict[str, Any]:
    """Clues received per month and the handling-time figures (heavier: a pass over every row)."""
    await _no_jit(session)
    return {
        "by_month": await by_month(session, received_from=received_from, received_to=received_to),
        "handling_days": await handling_days(session, received_from=received_from, received_to=received_to),
    }


def _month(session: AsyncSession) -> Any:
    if session.bind.dialect.name == "postgresql":
        return func.to_char(Clue.received_at, "YYYY-MM")
    return func.strftime("%Y-%m", Clue.received_at)


async def by_month(
    session: AsyncSession, *, received_from: datetime | None = None, received_to: datetime | None = None
) -> dict[str, int]:
    """Clues received per month (UTC months; a day's edge cases do not change a trend)."""
    month = _month(session)
    query = _window(select(month, func.count()).select_from(Clue), received_from, received_to).group_by(month)
    return {str(key): count for key, count in sorted((await session.execute(query)).all())}


async def handling_days(
    session: AsyncSession, *, received_from: datetime | None = None, received_to: datetime | None = None
) -> dict[str, Any]:
    """Days from receipt to conclusion for concluded clues: count, mean and maximum."""
    if session.bind.dialect.name == "postgresql":
        days = func.extract("epoch", ClueState.concluded_at - Clue.received_at) / 86400.0
    else:
        days = func.julianday(ClueState.concluded_at) - func.julianday(Clue.received_at)
    query = _window(
        select(func.count(), func.avg(days), func.max(days))
        .select_from(Clue)
        .join(ClueState, ClueState.clue_id == Clue.id)
        .where(ClueState.concluded_at.is_not(None)),
        received_from,
        received_to,
    )
    count, mean, longest = (await session.execute(query)).one()
    return {
        "concluded": count,
        "mean_days": round(float(mean), 1) if mean is not None else None,
        "max_days": round(float(longest), 1) if longest is not None else None,
    }


async def overdue_by_unit_and_handler(
    session: AsyncSession, *, now: datetime | None = None
) -> dict[str, Any]:
    """Open clues past their deadline, and due within ``AT_RISK_DAYS``, per handling unit and handler.
    Shelved clues (暂存待查) have no running deadline and are left out."""
    now = now or utcnow()
    soon = now + timedelta(days=AT_RISK_DAYS)
    open_clues = (
        select(Clue.handling_unit_id, Clue.assignee_id, Clue.due_at)
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .where(Clue.status.in_([s.value for s in OPEN_STATUSES]))
        .where((ClueState.disposal_method.is_(None)) | (ClueState.disposal_method != "shelve"))
        .where(Clue.due_at < soon)
        .subquery()
    )
    overdue = func.sum(func.cast(open_clues.c.due_at < now, type_=_int()))
    query = select(open_clues.c.handling_unit_id, open_clues.c.assignee_id, overdue, func.count()).group_by(
        open_clues.c.handling_unit_id, open_clues.c.assignee_id
    )
    units = dict((await session.execute(select(Unit.id, Unit.name))).all())
    staff = dict((await session.execute(select(Staff.id, Staff.name))).all())
    per_unit: dict[str, dict[str, int]] = {}
    per_handler: list[dict[str, Any]] = []
    for unit_id, assignee_id, late, total in (await session.execute(query)).all():
        late = int(late or 0)
        unit_name = units.get(unit_id, "未分办")
        bucket = per_unit.setdefault(unit_name, {"overdue": 0, "at_risk": 0})
        bucket["overdue"] += late
        bucket["at_risk"] += total - late
        per_handler.append(
            {
                "unit": unit_name,
                "handler": staff.get(assignee_id, "未指定"),
                "handler_id": assignee_id,
                "overdue": late,
                "at_risk": total - late,
            }
        )
    per_handler.sort(key=lambda item: (-item["overdue"], -item["at_risk"]))
    return {"at_risk_days": AT_RISK_DAYS, "per_unit": per_unit, "per_handler": per_handler}


def _int() -> Any:
    from sqlalchemy import Integer

    return Integer()


async def quarterly(session: AsyncSession, *, year: int, quarter: int) -> dict[str, Any]:
    """The quarterly results report (督导检查): what came in, how it was disposed of and concluded, what was
    referred, what is overdue at the quarter's end, and handling times. Counts only."""
    from datetime import time as day_time

    start = datetime.combine(datetime(year, 3 * quarter - 2, 1).date(), day_time.min, tzinfo=LOCAL)
    end = (
        datetime.combine(datetime(year + 1, 1, 1).date(), day_time.min, tzinfo=LOCAL)
        if quarter == 4
        else datetime.combine(datetime(year, 3 * quarter + 1, 1).date(), day_time.min, tzinfo=LOCAL)
    )
    await _no_jit(session)
    received = await overview(session, received_from=start, received_to=end)

    async def count_by(column: Any, moment: Any) -> dict[str, int]:
        query = (
            select(column, func.count())
            .select_from(ClueState)
            .where(moment >= start, moment < end)
            .group_by(column)
        )
        return {str(key): n for key, n in (await session.execute(query)).all()}

    steps = (
        await session.execute(
            select(ClueTransition.action, func.count())
            .where(ClueTransition.at >= start, ClueTransition.at < end)
            .group_by(ClueTransition.action)
        )
    ).all()
    open_at_end = (
        select(func.count())
        .select_from(Clue)
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .where(Clue.status.in_([s.value for s in OPEN_STATUSES]), Clue.due_at < end, Clue.received_at < end)
        .where((ClueState.disposal_method.is_(None)) | (ClueState.disposal_method != "shelve"))
    )
    consultations = select(func.count()).where(Consultation.held_on >= start, Consultation.held_on < end)
    return {
        "year": year,
        "quarter": quarter,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "received": received,
        "disposed_by_method": await count_by(ClueState.disposal_method, ClueState.disposed_at),
        "concluded_by_finding": await count_by(ClueState.finding, ClueState.concluded_at),
        "referred_by_target": await count_by(ClueState.referral_target, ClueState.referred_at),
        "steps": dict(steps),
        "overdue_at_end": await session.scalar(open_at_end),
        "consultations": await session.scalar(consultations),
        "handling_days": await handling_days_concluded_between(session, start, end),
    }


async def handling_days_concluded_between(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[str, Any]:
    if session.bind.dialect.name == "postgresql":
        days = func.extract("epoch", ClueState.concluded_at - Clue.received_at) / 86400.0
    else:
        days = func.julianday(ClueState.concluded_at) - func.julianday(Clue.received_at)
    query = (
        select(func.count(), func.avg(days), func.max(days))
        .select_from(Clue)
        .join(ClueState, ClueState.clue_id == Clue.id)
        .where(ClueState.concluded_at >= start, ClueState.concluded_at < end)
    )
    count, mean, longest = (await session.execute(query)).one()
    return {
        "concluded": count,
        "mean_days": round(float(mean), 1) if mean is not None else None,
        "max_days": round(float(longest), 1) if longest is not None else None,
    }
