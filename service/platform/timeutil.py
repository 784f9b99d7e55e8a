"""Times are stored in UTC and shown and counted in Asia/Shanghai."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from service.platform.settings import ZONE

LOCAL = ZoneInfo(ZONE)


def utcnow() -> datetime:
    return datetime.now(UTC)


def hour_floor(moment: datetime) -> datetime:
    """The start of the hour (UTC; Asia/Shanghai is a whole number of hours off UTC, so also local): what
    is kept of when an anonymous report arrived."""
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_date(moment: datetime) -> date:
    return as_utc(moment).astimezone(LOCAL).date()


def add_months_local(moment: datetime, months: int) -> datetime:
    """The same local wall-clock time ``months`` calendar months later (day clamped to month end), in UTC."""
    local = as_utc(moment).astimezone(LOCAL)
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(UTC)
