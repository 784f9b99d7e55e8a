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
