"""Index locality of row ids on SQLite: full UUIDv7 against UUIDv7 with the time part cut to the hour (the
rows of anonymous reports), all random after it or with the batch stamp of ``id_batch``. A table with a
36-character primary key and one more index holds 200,000 older rows and HOUR_ROWS rows of the current
hour (default 20,000: a flood of 5 reports a second for an hour); then 200 commits of 64 new rows each
(group commits). Prints the time and the WAL bytes written for each.

    python bench/bench_id_locality.py [HOUR_ROWS] [DIRECTORY]
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
import uuid

from service.platform.db import _RANDOM_BITS, _VERSION_AND_VARIANT, id_batch, new_id

HOUR_MS = 3_600_000


def make_id(millis: int) -> str:
    random = int.from_bytes(os.urandom(10), "big") & _RANDOM_BITS
    return str(uuid.UUID(int=millis << 80 | _VERSION_AND_VARIANT | random))


def insert_batch(db: sqlite3.Connection, mode: str, rows: int) -> None:
    """``v7``: full UUIDv7; ``hour``: hour-only, all random; ``batch``: hour-only inside ``id_batch``."""
    with id_batch():
        for _ in range(rows):
            row_id = (
                new_id() if mode == "v7" else new_id(hour_only=True) if mode == "batch" else _hour_random()
            )
            db.execute("INSERT INTO t VALUES (?, ?, ?)", (row_id, row_id, b"x" * 200))


def _hour_random() -> str:
    now = int(time.time() * 1000)
    return make_id(now - now % HOUR_MS)


def run(mode: str, path: str, hour_rows: int) -> tuple[float, int]:
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id VARCHAR(36) PRIMARY KEY, clue_id VARCHAR(36), body BLOB)")
    db.execute("CREATE INDEX ix_t_clue_id ON t(clue_id)")
    now = int(time.time() * 1000)
    hour = now - now % HOUR_MS
    db.execute("BEGIN")
    for i in range(200_000):
        row_id = make_id(hour - 40 * HOUR_MS + i * 720)
        db.execute("INSERT INTO t VALUES (?, ?, ?)", (row_id, row_id, b"x" * 200))
    for start in range(0, hour_rows, 64):
        insert_batch(db, mode, min(64, hour_rows - start))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    started = time.perf_counter()
    for _ in range(200):
        db.execute("BEGIN")
        insert_batch(db, mode, 64)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    wal = os.path.getsize(path + "-wal")
    db.close()
    return elapsed, wal


def main() -> None:
    hour_rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    directory = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="tipline-bench-")
    for mode in ("v7", "hour", "batch", "v7", "hour", "batch"):
        elapsed, wal = run(mode, os.path.join(directory, f"ids-{mode}.db"), hour_rows)
        print(
            f"{mode:5s} {hour_rows} rows in the hour, 200 commits x 64 rows: "
            f"{elapsed:.2f} s, WAL {wal / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()
