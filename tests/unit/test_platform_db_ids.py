"""Row ids: UUIDv7, time-ordered (index locality) and still unguessable."""

from __future__ import annotations

import time
import uuid

from service.platform.db import new_id


def test_ids_are_uuid7_ordered_by_time_and_distinct() -> None:
    earlier = [new_id() for _ in range(1000)]
    time.sleep(0.002)
    later = new_id()
    parsed = [uuid.UUID(value) for value in earlier]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(earlier)) == len(earlier)
    assert max(earlier) < later  # a later millisecond sorts after, as text too
    now_ms = time.time_ns() // 1_000_000
    assert abs((parsed[0].int >> 80) - now_ms) < 5_000
    # 74 random bits: ids made in the same millisecond still differ in their random part.
    assert len({u.int & ((1 << 62) - 1) for u in parsed}) == len(parsed)


def test_hour_only_ids_carry_the_hour_and_batches_keep_locality() -> None:
    """Anonymous reports' ids: the time part is the start of the hour. Inside ``id_batch`` a batch's ids sort
    after the previous batch's (index locality) but not in the order they were made; outside, at random."""
    from service.platform.db import id_batch

    hour_ms = 3_600_000
    now_ms = time.time_ns() // 1_000_000
    loose = [new_id(hour_only=True) for _ in range(64)]
    with id_batch():
        first = [new_id(hour_only=True) for _ in range(64)]
    with id_batch():
        second = [new_id(hour_only=True) for _ in range(64)]
    for value in loose + first + second:
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        millis = parsed.int >> 80
        if now_ms // hour_ms == (time.time_ns() // 1_000_000) // hour_ms:  # not across an hour boundary
            assert millis == now_ms - now_ms % hour_ms
    assert len(set(loose + first + second)) == 192
    assert first != sorted(first) and second != sorted(second) and loose != sorted(loose)
    if now_ms // hour_ms == (time.time_ns() // 1_000_000) // hour_ms:
        assert max(first) < min(second)  # the next batch appends
