"""Hotline calls for tests: a caller number, a call body, and a check that a value is stored nowhere."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.helpers.app import Harness


def caller_number() -> str:
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


def call_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "call_started_at": (datetime.now(UTC) - timedelta(minutes=12)).isoformat(),
        "duration_seconds": 540,
        "caller_number": caller_number(),
        "anonymous": True,
        "callback_allowed": True,
        "callback_how": "只在工作日晚上打，不要留言",
        "accused": {"name": "赵某", "unit": "某某看守所", "position": "管教民警"},
        "summary": "来电人反映看守所管教民警赵某收钱后给在押人员家属通风报信。",
        "caller_words": "交了两万块钱，他就把案子的情况都告诉我们了。",
    }
    body.update(overrides)
    return body


async def assert_absent_from_database(harness: Harness, needle: str) -> None:
    """The needle appears nowhere in the stored data: the SQLite file and its WAL byte for byte, or on
    PostgreSQL every row of every table rendered as text (bytea as hex)."""
    if harness.database_url.startswith("sqlite"):
        path = harness.database_url.split(":///", 1)[1]
        for suffix in ("", "-wal"):
            try:
                with open(path + suffix, "rb") as fh:  # noqa: ASYNC230 - a test reading its own file
                    data = fh.read()
            except FileNotFoundError:
                continue
            assert needle.encode("utf-8") not in data, f"plaintext found in {path + suffix}"
        return
    hexed = needle.encode("utf-8").hex()
    async with harness.runtime.session_factory() as session:
        tables = (
            await session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
        ).scalars()
        for table in list(tables):
            rows = (await session.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t'))).scalars()  # noqa: S608
            for row in rows:
                assert needle not in row and hexed not in row, f"plaintext found in table {table}"
