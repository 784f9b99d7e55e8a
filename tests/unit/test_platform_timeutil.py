from __future__ import annotations

from datetime import UTC, datetime

from service.platform.timeutil import add_months_local, local_date


def test_year_follows_shanghai_not_utc() -> None:
    # 2026-12-31 17:00 UTC is already 2027-01-01 in Shanghai.
    assert local_date(datetime(2026, 12, 31, 17, 0, tzinfo=UTC)).year == 2027


def test_one_month_clamps_to_month_end_in_local_time() -> None:
    # 2026-01-31 10:00 Shanghai -> 2026-02-28 10:00 Shanghai
    start = datetime(2026, 1, 31, 2, 0, tzinfo=UTC)
    assert add_months_local(start, 1) == datetime(2026, 2, 28, 2, 0, tzinfo=UTC)
    assert add_months_local(datetime(2026, 12, 15, 0, 0, tzinfo=UTC), 1) == datetime(
        2027, 1, 15, 0, 0, tzinfo=UTC
    )
