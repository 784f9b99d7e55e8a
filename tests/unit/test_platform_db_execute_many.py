"""``execute_many``: on SQLite the rows go to the DB-API cursor directly; what lands in the database, and the
errors raised, must be exactly what SQLAlchemy's own execution gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    text,
)
from sqlalchemy.exc import IntegrityError

from service.platform.db import UTCDateTime, execute_many

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", String, primary_key=True),
    Column("at", UTCDateTime),
    Column("flag", Boolean),
    Column("blob", LargeBinary),
    Column("n", Integer),
)
with_default = Table(
    "with_default", metadata, Column("id", String, primary_key=True), Column("n", Integer, default=7)
)


def _rows(prefix: str) -> list[dict[str, object]]:
    shanghai = timezone(timedelta(hours=8))
    return [
        {
            "id": f"{prefix}1",
            "at": datetime(2026, 11, 26, 8, 0, tzinfo=shanghai),
            "flag": True,
            "blob": b"\x00\xff",
            "n": 1,
        },
        {"id": f"{prefix}2", "at": datetime(2026, 1, 1, tzinfo=UTC), "flag": False, "blob": None, "n": None},
    ]


def test_rows_land_as_sqlalchemy_writes_them() -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(things), _rows("orm-"))
        execute_many(connection, insert(things), _rows("raw-"))
        stored = connection.execute(text("SELECT id, at, flag, blob, n FROM things ORDER BY id")).all()
    by_source = {row[0]: row[1:] for row in stored}
    assert by_source["raw-1"] == by_source["orm-1"] and by_source["raw-2"] == by_source["orm-2"]
    assert by_source["raw-1"][0] == "2026-11-26 00:00:00.000000"  # stored in UTC, as every other time


def test_constants_in_the_statement_and_errors_as_sqlalchemy_raises_them() -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        execute_many(
            connection, insert(things).values(n=5, flag=True), [{"id": "a", "at": None, "blob": None}]
        )
        assert connection.execute(text("SELECT n, flag FROM things")).one() == (5, 1)
        with pytest.raises(IntegrityError) as duplicate:
            execute_many(connection, insert(things), _rows("same-") + _rows("same-"))
        assert "same-" not in str(duplicate.value)  # the values are not in the message
        with pytest.raises(ValueError, match="every value"):  # a Python-side default is not filled in here
            execute_many(connection, insert(with_default), [{"id": "x"}])
