"""Shared fixtures: a real database per backend (SQLite file and PostgreSQL), a migrated app, a client.

PostgreSQL is the local server at 127.0.0.1:5432 (override with TIPLINE_TEST_PG_DSN). Each test session
creates its own database and drops it afterwards. Under CI (``CI`` set to a true value) a missing server
fails the run. Plain functions and classes that tests import live in ``tests/helpers/``; this file keeps
the fixtures only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.helpers.app import Harness, running_app
from tests.helpers.database import BACKENDS, create_pg_database, drop_pg_database


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
    yield url
    await drop_pg_database(url)


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of the test's own, for tests that damage or fill it."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
        return
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def harness(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_app(tmp_path_factory.mktemp("data"), database_url, intake_workers=1) as harness:
        yield harness
