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
from service.intake import service as intake_service
from service.intake.receipts import receipt_hash
from service.platform.db import create_engine, create_session_factory
from tests.helpers.app import running_app
from tests.helpers.database import create_pg_database, drop_pg_database, pg_admin


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
        admin = await pg_admin()
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
                prepared = await runtime.intake.prepare(submission, actor="public")
                (tip,) = await intake_service.register_prepared(session, runtime=runtime, prepared=[prepared])
                await session.commit()
        finally:
            await engine.dispose()
        code_hash = receipt_hash(runtime.lookup_key("receipt"), tip.receipt)
    status = await run(intake_url, "SELECT tipline_receipt_status(:h)", h=code_hash)
    assert status  # the narrow function answers
    for statement in (
        "SELECT content FROM clues",
        "SELECT identity FROM clues",
        "SELECT body FROM messages",
        "SELECT content FROM clue_additions",
        "SELECT details FROM audit_entries",
        "SELECT name FROM staff",
        # Compartments: intake wraps to public keys; no private key's wrap nor any clue's wraps or fields.
        "SELECT password_wrap FROM compartment_keys",
        "SELECT escrow_wrap FROM compartment_keys",
        "SELECT wrapped FROM clue_key_wraps",
        "SELECT content FROM clue_sealed",
        "SELECT wrapped FROM unit_key_grants",
        "UPDATE clues SET status = 'closed'",
        "DELETE FROM receipts",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            await run(intake_url, statement)
    # Without a receipt's code it sees no clue, not even how many there are (row-level security).
    for statement in (
        "SELECT count(*) FROM clues",
        "SELECT count(*) FROM receipts",
        "SELECT count(*) FROM reporter_keys",
    ):
        assert await run(intake_url, statement) == 0


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


async def test_the_public_side_runs_as_the_intake_role(roles_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The intake process connected as the intake role: reports, receipt status, the reporter's messages and
    a read-aloud code's replacement all work; each receipt opens its own clue and no other."""
    import httpx
    from sqlalchemy import update

    from service.app.main import create_app
    from service.intake.models import Receipt
    from tests.helpers.app import make_settings
    from tests.helpers.web import open_status, post_reply, post_report, receipt_from

    url, intake, _ = roles_db
    app = create_app(make_settings(tmp_path, as_role(url, intake)), frozenset({"intake"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as client:
            first = await client.post("/api/v1/tips", json={"text": "派出所民警收红包后不立案，第一次反映。"})
            second = await client.post(
                "/api/v1/tips",
                json={
                    "text": "法官私下会见当事人，第二份。",
                    "anonymous": False,
                    "submitter": {"name": "举报人", "phone": "13800138000"},
                },
            )
            assert first.status_code == second.status_code == 201
            code = first.json()["receipt"]
            status = await client.post("/api/v1/receipt/status", json={"receipt": code})
            assert status.status_code == 200 and status.json()["status"]
            sent = await client.post(
                "/api/v1/receipt/messages", json={"receipt": code, "text": "补充：还有证人。"}
            )
            assert sent.status_code == 201
            assert [m["text"] for m in sent.json()["messages"]] == ["补充：还有证人。"]
            other = await client.post("/api/v1/receipt/status", json={"receipt": second.json()["receipt"]})
            assert other.status_code == 200 and other.json()["messages"] == []  # its own thread only

            # A code read out by the hotline is replaced at its first use on the web, as the intake role.
            owner = create_engine(url)
            try:
                async with owner.begin() as connection:
                    await connection.execute(update(Receipt).values(read_aloud=True))
            finally:
                await owner.dispose()
            replaced = await client.post("/api/v1/receipt/status", json={"receipt": code})
            assert replaced.status_code == 200
            new_code = replaced.json()["new_receipt"]
            assert new_code and new_code != code
            assert (await client.post("/api/v1/receipt/status", json={"receipt": code})).status_code == 404
            again = await client.post("/api/v1/receipt/status", json={"receipt": new_code})
            assert [m["text"] for m in again.json()["messages"]] == ["补充：还有证人。"]  # key re-wrapped

            # The web form with a file, the status page and a reply with a file (a second transaction).
            report = await post_report(
                client, {"text": "看守所民警收钱办保外就医。"}, [("a.txt", "证据".encode())]
            )
            assert report.status_code == 200, report.text
            page = await open_status(client, receipt_from(report.text))
            assert page.status_code == 200
            reply = await post_reply(client, page.text, "补充时间地点", files=[("b.txt", "更多".encode())])
            assert reply.status_code == 200 and "补充时间地点" in reply.text

    # With a receipt's hash set, the intake role sees exactly that clue's status, still no content.
    runtime_key = app.state.runtime.lookup_key("receipt")
    from service.intake.receipts import normalise_receipt

    code_hash = receipt_hash(runtime_key, normalise_receipt(new_code))
    engine = create_engine(as_role(url, intake))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT set_config('tipline.receipt', :h, true)"), {"h": code_hash.hex()}
            )
            assert (await connection.execute(text("SELECT count(*) FROM clues"))).scalar() == 1
            # Its receipts: the live code and the replaced one; no other clue's.
            assert (await connection.execute(text("SELECT count(*) FROM receipts"))).scalar() == 2
            with pytest.raises(DBAPIError, match="permission denied"):
                async with connection.begin_nested():
                    await connection.execute(text("SELECT content FROM clues"))
    finally:
        await engine.dispose()
