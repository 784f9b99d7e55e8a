"""The PostgreSQL side of the test databases: a fresh database per use on the local server (127.0.0.1:5432,
override with TIPLINE_TEST_PG_DSN). A missing server skips locally and fails under CI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.tools import missing

PG_ADMIN_DSN = os.environ.get("TIPLINE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


async def pg_admin():  # type: ignore[no-untyped-def]
    import asyncpg

    return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)


async def create_pg_database() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy URL."""
    try:
        admin = await pg_admin()
    except (OSError, Exception) as exc:  # noqa: BLE001 - any connection failure means "no server"
        missing(
            f"the PostgreSQL server at {PG_ADMIN_DSN.rsplit('@', 1)[-1]} ({type(exc).__name__})",
            "start one (apt-get install postgresql) or set TIPLINE_TEST_PG_DSN",
        )
    name = f"tipline_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await pg_admin()
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def _run(coroutine):  # type: ignore[no-untyped-def]
    """Run a coroutine to the end from synchronous code, on a thread of its own (so it never meets an
    event loop already running in this thread, such as Playwright's)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextmanager
def own_database(backend: str, directory: Path) -> Iterator[str]:
    """A database of its own for synchronous code (the browser tests' server): an SQLite file in
    ``directory``, or a fresh PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'tipline.db'}"
        return
    url = _run(create_pg_database())
    try:
        yield url
    finally:
        _run(drop_pg_database(url))
