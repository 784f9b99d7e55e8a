"""Least privilege on PostgreSQL: the intake role writes reports but reads no content; the staff role owns
nothing, so it cannot drop or disable the audit trigger, nor update or delete audit entries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service.custody.db_roles import apply_roles
from service.db import create_engine, create_session_factory
from service.intake import service as intake_service
from service.intake.receipts import receipt_hash
from tests.conftest import _pg_admin, create_pg_database, drop_pg_database, running_app


@pytest_asyncio.fixture(loop_scope="session")
async def roles_db(tmp_path: Path) -> AsyncIterator[tuple[str, str, str]]:
    url = await create_pg_database()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    try:
        async with running_app(tmp_path, url, database_auto_upgrade=True):
            pass
        engine = create_engine(url)
        async with engine.begin() as connection:
            intake, staff = await apply_roles(connection, prefix=prefix)
        await engine.dispose()
        yield url, intake, staff
    finally:
        await drop_pg_database(url)
        admin = await _pg_admin()
        for role in (f"{prefix}_intake", f"{prefix}_staff"):
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


def as_role(url: str, role: str) -> str:
    rest = url.split("@", 1)[1]
    return f"postgresql+asyncpg://{role}@{rest}"


async def run(url: str, statement: str, **params: object) -> object:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return (await connection.execute(text(statement), params)).scalar()
    finally:
        await engine.dispose()


async def test_intake_inserts_but_reads_no_content(roles_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, intake, _ = roles_db
    intake_url = as_role(url, intake)
    async with running_app(tmp_path, url) as owner_app:
        runtime = owner_app.runtime
        engine = create_engine(intake_url)
        try:
            async with create_session_factory(engine)() as session:
                submission = intake_service.Submission(text="派出所民警收红包后不立案。", channel="web")
                tip = await intake_service.submit_tip(
                    session, runtime=runtime, submission=submission, actor="public"
                )
                await session.commit()
        finally:
            await engine.dispose()
        code_hash = receipt_hash(runtime.lookup_key("receipt"), tip.receipt)
    status = await run(intake_url, "SELECT tipline_receipt_status(:h)", h=code_hash)
    assert status  # the narrow function answers
    for statement in (
        "SELECT content FROM clues",
        "SELECT count(*) FROM clues",
        "SELECT code_hash FROM receipts",
        "SELECT details FROM audit_entries",
        "SELECT name FROM staff",
        "UPDATE clues SET status = 'closed'",
        "DELETE FROM receipts",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            await run(intake_url, statement)


async def test_staff_cannot_touch_the_audit_trigger_or_rows(roles_db) -> None:  # type: ignore[no-untyped-def]
    url, _, staff = roles_db
    staff_url = as_role(url, staff)
    assert await run(staff_url, "SELECT count(*) FROM audit_entries") >= 0  # type: ignore[operator]
    for statement, error in (
        ("DROP TRIGGER audit_entries_append_only ON audit_entries", "must be owner"),
        ("ALTER TABLE audit_entries DISABLE TRIGGER ALL", "must be owner"),
        ("UPDATE audit_entries SET actor = 'x'", "permission denied"),
        ("DELETE FROM audit_entries", "permission denied"),
        ("TRUNCATE audit_entries", "permission denied"),
        ("DROP TABLE clues", "must be owner"),
        ("CREATE TABLE sneaky (id int)", "permission denied"),
    ):
        with pytest.raises(DBAPIError, match=error):
            await run(staff_url, statement)
