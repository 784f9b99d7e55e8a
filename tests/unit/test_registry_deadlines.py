"""Working-day arithmetic across the 2026 Spring Festival (holidays 15-23 Feb, make-up workdays 14 and
28 Feb), the fallback beyond the calendar's range, rule selection and the alert thresholds."""

from __future__ import annotations

import logging
from datetime import date, datetime

import pytest

from service.platform.timeutil import LOCAL, local_date
from service.registry import deadlines
from service.registry.deadlines import (
    AlertLevel,
    Limit,
    RuleRow,
    Stage,
    add_working_days,
    alert_level,
    due_after_working_days,
    is_workday,
    pick_limit,
    working_days_between,
)


def local(y: int, m: int, d: int, hh: int = 10) -> datetime:
    return datetime(y, m, d, hh, tzinfo=LOCAL)


def test_spring_festival_2026_holidays_and_make_up_days() -> None:
    assert is_workday(date(2026, 2, 14))  # Saturday, make-up workday
    assert is_workday(date(2026, 2, 28))  # Saturday, make-up workday
    assert not any(is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert not is_workday(date(2026, 3, 1))  # ordinary Sunday


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 2, 12), 1, date(2026, 2, 13)),
        (date(2026, 2, 12), 2, date(2026, 2, 14)),  # the Saturday make-up day counts
        (date(2026, 2, 12), 3, date(2026, 2, 24)),  # then nine days off
        (date(2026, 2, 13), 5, date(2026, 2, 27)),  # referral limit from the Friday before
        (date(2026, 2, 13), 6, date(2026, 2, 28)),
        (date(2026, 2, 13), 7, date(2026, 3, 2)),
        (date(2026, 2, 10), 15, date(2026, 3, 9)),  # 15 working days straddling the festival
        (date(2026, 2, 16), 1, date(2026, 2, 24)),  # received during the holiday
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # National Day and Mid-Autumn, 1-7 Oct
    ],
)
def test_add_working_days(start: date, days: int, expected: date) -> None:
    assert add_working_days(start, days) == expected
    assert working_days_between(start, expected) == days


def test_deadline_is_end_of_local_day() -> None:
    due = due_after_working_days(local(2026, 2, 13), 5)
    assert local_date(due) == date(2026, 2, 27)
    assert due.astimezone(LOCAL).hour == 23


def test_fallback_beyond_calendar_range_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    deadlines._warned_years.discard(2031)
    with caplog.at_level(logging.WARNING, logger="tipline.registry.deadlines"):
        assert is_workday(date(2031, 1, 3))  # a Friday, assumed a workday
        assert not is_workday(date(2031, 1, 4))
        assert add_working_days(date(2031, 1, 3), 1) == date(2031, 1, 6)
    warnings = [r for r in caplog.records if "2031" in r.getMessage()]
    assert len(warnings) == 1


def test_rule_selection_most_specific_then_shortest() -> None:
    rules = [
        RuleRow("verification", None, None, 20, None),
        RuleRow("verification", "superior_assigned", None, 10, None),
        RuleRow("verification", None, "interference", 12, None),
        RuleRow("verification", None, "vice", 8, None),
        RuleRow("disposal", "public_report", "vice", None, 2),
    ]
    pick = pick_limit
    assert pick([], stage=Stage.verification, source="public_report", categories=()) == Limit(15)
    assert pick(rules, stage=Stage.verification, source="public_report", categories=()) == Limit(20)
    assert pick(rules, stage=Stage.verification, source="superior_assigned", categories=()) == Limit(10)
    assert pick(
        rules, stage=Stage.verification, source="superior_assigned", categories=("interference",)
    ) == Limit(12)
    assert pick(
        rules, stage=Stage.verification, source="public_report", categories=("interference", "vice")
    ) == Limit(8)
    assert pick(rules, stage=Stage.disposal, source="public_report", categories=("vice",)) == Limit(None, 2)
    assert pick(rules, stage=Stage.disposal, source="web", categories=("vice",)) == Limit(None, 1)


def test_alert_thresholds_count_working_days_only() -> None:
    started = local(2026, 2, 10)
    due = due_after_working_days(started, 10)  # 10 working days: ends 2026-03-02
    assert local_date(due) == date(2026, 3, 2)
    assert alert_level(started, due, local(2026, 2, 12)) is AlertLevel.ok  # 2/10
    # During the festival no working day passes: still 4/10 used (11,12,13,14).
    assert alert_level(started, due, local(2026, 2, 22)) is AlertLevel.ok
    assert alert_level(started, due, local(2026, 2, 24)) is AlertLevel.half  # 5/10
    assert alert_level(started, due, local(2026, 2, 26)) is AlertLevel.half  # 7/10
    assert alert_level(started, due, local(2026, 2, 27)) is AlertLevel.warning  # 8/10
    assert alert_level(started, due, local(2026, 3, 2, 23)) is AlertLevel.warning
    assert alert_level(started, due, local(2026, 3, 3, 0)) is AlertLevel.overdue
    assert alert_level(started, started, local(2026, 2, 10, 9)) is AlertLevel.ok
