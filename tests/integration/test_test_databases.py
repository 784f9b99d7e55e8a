"""Test databases left behind (tests/helpers/database.py): a session drops, at its start, the ``tipline_test_*``
databases of runs that are gone, and never one a running session may still use or any other database."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import pytest

from tests.helpers.database import (
    _HOST,
    PG_PREFIX,
    create_pg_database,
    drop_abandoned,
    drop_what_is_left,
    pg_admin,
)


async def _names() -> set[str]:
    admin = await pg_admin()
    try:
        return {row["datname"] for row in await admin.fetch("SELECT datname FROM pg_database")}
    finally:
        await admin.close()


async def _create(*names: str) -> None:
    admin = await pg_admin()
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop(*names: str) -> None:
    admin = await pg_admin()
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def postgresql() -> None:
    try:
        await _names()
    except Exception:  # noqa: BLE001 - no server
        pytest.skip("PostgreSQL not reachable")


async def test_only_databases_of_gone_runs_are_dropped_at_session_start(postgresql: None) -> None:
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    gone_pid = child.pid  # a process that has ended: a run killed outright
    now = int(time.time())
    session_started = now + 5.0  # as if this session began a moment from now

    def name(epoch: int, pid: int) -> str:
        return f"{PG_PREFIX}{_HOST}_{epoch}_{pid}_{uuid.uuid4().hex[:8]}"

    left = name(now, gone_pid)
    running = name(now, os.getpid())  # a session still running (here: this one, started before ``now``)
    newer = name(int(session_started) + 1, gone_pid)  # made since the session began (an xdist sibling's)
    other = f"tipline_keep_{uuid.uuid4().hex[:8]}"  # not a test database
    await _create(left, running, newer, other)
    try:
        dropped = await drop_abandoned(session_started)
        present = await _names()
        assert left in dropped and left not in present
        assert {running, newer, other} <= present and not {running, newer, other} & set(dropped)
    finally:
        await _drop(left, running, newer, other)


async def test_what_a_session_created_and_did_not_drop_is_dropped_at_its_end(postgresql: None) -> None:
    url = await create_pg_database()  # e.g. a fixture that failed after making it: never dropped by it
    name = url.rsplit("/", 1)[1]
    assert name in await _names()
    drop_what_is_left()  # what the session's end (and exit, after an interrupt) does
    assert name not in await _names()
