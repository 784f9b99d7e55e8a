"""A database error never carries the statement's values: whatever reaches a log, the CLI's one line or a
trace shows the statement only. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from service.platform.db import create_engine

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_failed_statement_does_not_show_its_values(fresh_database_url: str) -> None:
    phone = "13900000001"
    engine = create_engine(fresh_database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TABLE leak_probe (a VARCHAR(40) UNIQUE)"))
            await connection.execute(text("INSERT INTO leak_probe VALUES (:a)"), {"a": phone})
            with pytest.raises(IntegrityError) as failed:
                await connection.execute(text("INSERT INTO leak_probe VALUES (:a)"), {"a": phone})
        message = str(failed.value)
        assert "leak_probe" in message  # the statement is still there to debug with
        assert phone not in message and phone not in repr(failed.value)
    finally:
        await engine.dispose()
