"""Shared fixtures: a real database per backend (SQLite file and PostgreSQL), a migrated app, a client.

PostgreSQL is the local server at 127.0.0.1:5432 (override with TIPLINE_TEST_PG_DSN). Each test session
creates its own database and drops it afterwards, also when a test fails or the run is interrupted; a run
that was killed outright leaves its databases to the next session, which drops them at its start. Under
CI (``CI`` set to a true value) a missing server fails the run. Plain functions and classes that tests
import live in ``tests/helpers/``; this file keeps the fixtures and session hooks only.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.helpers.app import Harness, running_app
from tests.helpers.database import (
    BACKENDS,
    create_pg_database,
    drop_abandoned,
    drop_pg_database,
    drop_what_is_left,
    in_a_thread_of_its_own,
)


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped with SIGTERM (a CI time limit, ``kill``) ends like one stopped with Ctrl-C: fixtures
    tear down and the session's databases are dropped, instead of the process vanishing on the spot."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, interrupt)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Drop test databases that crashed or killed runs left behind: only ``tipline_test_*`` ones whose
    session is gone, and only in the controlling process (xdist workers start at other moments)."""
    if hasattr(session.config, "workerinput"):
        return
    session_started = time.time()
    dropped = in_a_thread_of_its_own(lambda: drop_abandoned(session_started))
    if isinstance(dropped, list) and dropped:  # an exception (no server): the fixtures skip or fail as before
        print(f"tests: dropped {len(dropped)} test database(s) left by earlier runs", file=sys.stderr)


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_what_is_left()  # a fixture that failed after creating its database, or a test that made its own



@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "tipline.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of the test's own, for tests that damage or fill it."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
        return
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def harness(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_app(tmp_path_factory.mktemp("data"), database_url, intake_workers=1) as harness:
        yield harness
