"""Shared fixtures: a real database per backend (SQLite file and PostgreSQL), a migrated app, a client.

PostgreSQL is the local server at 127.0.0.1:5432 (override with TIPLINE_TEST_PG_DSN). Each test session
creates its own database and drops it afterwards. With CI=true a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from service.app.main import create_app
from service.app.runtime import Runtime
from service.auth import service as auth_service
from service.platform.settings import Settings

PG_ADMIN_DSN = os.environ.get("TIPLINE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]
REPO_ROOT = Path(__file__).resolve().parent.parent


async def _pg_admin():  # type: ignore[no-untyped-def]
    import asyncpg

    return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)


async def create_pg_database() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy URL. Skips (or fails under CI) without a server."""
    try:
        admin = await _pg_admin()
    except (OSError, Exception) as exc:  # noqa: BLE001 - any connection failure means "no server"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {type(exc).__name__}")
        pytest.skip("PostgreSQL not reachable")
    name = f"tipline_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await _pg_admin()
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


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


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    """In-process preparing by default (a worker process per short-lived app would cost a spawn each); the
    session-wide ``harness`` and the real-server tests run with intake workers, as ``tipline serve`` does."""
    overrides.setdefault("intake_workers", 0)
    return Settings(data_dir=data_dir, database_url=database_url, **overrides)  # type: ignore[arg-type]


@dataclass
class Harness:
    """The app under test, its runtime (for direct service calls) and an httpx client speaking ASGI."""

    client: httpx.AsyncClient
    runtime: Runtime
    data_dir: Path
    database_url: str

    async def add_staff(self, name: str, roles: list[str], unit_id: str | None = None) -> tuple[str, str]:
        """Create a staff account straight through the service; returns (staff id, token)."""
        async with self.runtime.session_factory() as session:
            staff = await auth_service.add_staff(
                session, name=name, roles=roles, unit_id=unit_id, actor="test"
            )
            _, token = await auth_service.issue_token(session, staff=staff, ttl_days=1, actor="test")
            await session.commit()
            return staff.id, token

    async def add_unit(self, name: str, parent_id: str | None = None) -> str:
        async with self.runtime.session_factory() as session:
            unit = await auth_service.add_unit(
                session, name=name, kind="other", parent_id=parent_id, actor="test"
            )
            await session.commit()
            return unit.id


@asynccontextmanager
async def running_app(data_dir: Path, database_url: str, **overrides: object) -> AsyncIterator[Harness]:
    app = create_app(make_settings(data_dir, database_url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tipline.test") as client:
            yield Harness(client, app.state.runtime, data_dir, database_url)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def harness(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_app(tmp_path_factory.mktemp("data"), database_url, intake_workers=1) as harness:
        yield harness


def cli_env(data_dir: Path, database_url: str) -> dict[str, str]:
    """Environment for running the `tipline` command line against a test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(TIPLINE_DATA_DIR=str(data_dir), TIPLINE_DATABASE_URL=database_url, PYTHONPATH=str(REPO_ROOT))
    return env


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
