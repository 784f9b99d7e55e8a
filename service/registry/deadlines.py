"""Time limits in working days on the official calendar (holidays and make-up workdays).

Pure functions over dates, plus the rule lookup. ``chinese_calendar`` knows the State Council's published
arrangements (it covers years up to its release); beyond its range a day is a workday if it is Monday to
Friday, and a warning is logged once per year so an operator knows to upgrade the package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

import chinese_calendar

from service.platform.timeutil import LOCAL, add_months_local, as_utc, local_date

log = logging.getLogger("tipline.registry.deadlines")
_warned_years: set[int] = set()


def is_workday(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning(
                "chinese_calendar has no data for %s: counting Monday-Friday as working days; "
                "upgrade chinese-calendar once the State Council publishes the year's holidays",
                day.year,
            )
        return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (the start day itself is not counted)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_workday(current):
            remaining -= 1
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]; negative when end is before start."""
    if end < start:
        return -working_days_between(end, start)
    return sum(1 for n in range(1, (end - start).days + 1) if is_workday(start + timedelta(days=n)))


def end_of_local_day(day: date) -> datetime:
    """A deadline falls due at the end of its local day (23:59:59 Asia/Shanghai), stored as UTC."""
    return as_utc(datetime.combine(day, time(23, 59, 59), tzinfo=LOCAL))


def due_after_working_days(moment: datetime, days: int) -> datetime:
    return end_of_local_day(add_working_days(local_date(moment), days))


# --- Stages and rules --------------------------------------------------------------------------------


class Stage(StrEnum):
    referral = "referral"  # an out-of-scope report passed on
    acceptance_notice = "acceptance_notice"  # a real-name reporter told whether it was accepted
    disposal = "disposal"  # a disposal proposal after receipt
    verification = "verification"  # a preliminary verification (初步核实)
    inquiry = "inquiry"  # a talk or written inquiry (谈话函询)
    outcome_feedback = "outcome_feedback"  # a real-name reporter told the outcome after closing
    transfer_feedback = "transfer_feedback"  # the handling unit reports back after a transfer
    follow_up = "follow_up"  # 回访: a real-name reporter is called or visited after the finding
    objection = "objection"  # 异议: a real-name reporter's objection to a finding is answered


@dataclass(frozen=True)
class Limit:
    working_days: int | None = None
    months: int | None = None

    def due(self, start: datetime) -> datetime:

        if self.months is not None:
            return add_months_local(start, self.months)
        return due_after_working_days(start, self.working_days or 0)


DEFAULT_LIMITS: dict[Stage, Limit] = {
    Stage.referral: Limit(working_days=5),
    Stage.acceptance_notice: Limit(working_days=15),
    Stage.disposal: Limit(months=1),
    Stage.verification: Limit(working_days=15),
    Stage.inquiry: Limit(working_days=15),  # local practice (unconfirmed): same as verification
    Stage.outcome_feedback: Limit(working_days=15),
    Stage.transfer_feedback: Limit(working_days=15),  # unconfirmed: a document usually names its own date
    # 12337: reachable reporters are contacted within 30 days; local practice (unconfirmed) counts it from
    # the finding, in working days.
    Stage.follow_up: Limit(working_days=20),
    # unconfirmed: a review request is answered within 30 days (信访 practice); a committee configures its own
    Stage.objection: Limit(working_days=20),
}


@dataclass(frozen=True)
class RuleRow:
    stage: str
    source: str | None
    category: str | None
    working_days: int | None
    months: int | None


def pick_limit(
    rules: list[RuleRow], *, stage: Stage, source: str | None, categories: tuple[str, ...] | list[str]
) -> Limit:
    """The most specific configured rule (source and category > category > source > any), else the
    default. Among several matching categories the shortest limit wins: the stricter rule applies."""
    best: tuple[int, Limit] | None = None
    reference = datetime(2026, 1, 5, tzinfo=LOCAL)  # only to compare lengths of limits
    for rule in rules:
        if rule.stage != stage.value:
            continue
        if rule.source is not None and rule.source != source:
            continue
        if rule.category is not None and rule.category not in categories:
            continue
        score = (2 if rule.category else 0) + (1 if rule.source else 0)
        limit = Limit(rule.working_days, rule.months)
        if (
            best is None
            or score > best[0]
            or (score == best[0] and limit.due(reference) < best[1].due(reference))
        ):
            best = (score, limit)
    return best[1] if best else DEFAULT_LIMITS[stage]


# --- Alerts ------------------------------------------------------------------------------------------


class AlertLevel(StrEnum):
    ok = "ok"
    half = "half"  # 50% of the limit used
    warning = "warning"  # 80% used
    overdue = "overdue"


def alert_level(started: datetime, due: datetime, now: datetime) -> AlertLevel:
    """How much of a time limit is used, measured in working days (a holiday week does not eat a limit).

    Limits shorter than a working day (or starting on their due day) go straight from ok to overdue."""
    if now > due:
        return AlertLevel.overdue
    total = working_days_between(local_date(started), local_date(due))
    if total <= 0:
        return AlertLevel.ok
    used = working_days_between(local_date(started), local_date(now)) / total
    if used >= 0.8:
        return AlertLevel.warning
    if used >= 0.5:
        return AlertLevel.half
    return AlertLevel.ok
