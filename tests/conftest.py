"""Shared fixtures: a real database per backend (SQLite file and PostgreSQL), a migrated app, a client.

PostgreSQL is the local server at 127.0.0.1:5432 (override with TIPLINE_TEST_PG_DSN). Each test session
creates its own database and drops it afterwards, also when a test fails or the run is interrupted; a run
that was killed outright leaves its databases to the next session, which drops them at its start. With
CI=true a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from service.auth import service as auth_service
from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings

PG_ADMIN_DSN = os.environ.get("TIPLINE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]
REPO_ROOT = Path(__file__).resolve().parent.parent


async def _pg_admin():  # type: ignore[no-untyped-def]
    import asyncpg

    return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)


# Test databases are named tipline_test_<host>_<epoch>_<pid>_<random>: whoever finds one left behind can tell
# whether the session that made it may still be running (same host, that process alive since before it).
PG_PREFIX = "tipline_test_"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]
_NAME = re.compile(rf"^{PG_PREFIX}(?P<host>[0-9a-f]{{4}})_(?P<epoch>\d+)_(?P<pid>\d+)_[0-9a-f]+$")
_OLD_NAME = re.compile(rf"^{PG_PREFIX}[0-9a-f]{{12}}$")  # before owners were named: no way to tell
_created: set[str] = set()  # made by this process and not dropped yet: dropped at the latest at exit


async def create_pg_database() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy URL. Skips (or fails under CI) without a server.
    It is dropped by ``drop_pg_database``, or at the end of the session if a test never got that far."""
    try:
        admin = await _pg_admin()
    except (OSError, Exception) as exc:  # noqa: BLE001 - any connection failure means "no server"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {type(exc).__name__}")
        pytest.skip("PostgreSQL not reachable")
    name = f"{PG_PREFIX}{_HOST}_{int(time.time())}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _created.add(name)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    await _drop_databases([url.rsplit("/", 1)[1]])


async def _drop_databases(names: list[str]) -> None:
    admin = await _pg_admin()
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _created.discard(name)
    finally:
        await admin.close()


def _in_a_thread_of_its_own(work) -> object:  # type: ignore[no-untyped-def]
    """``asyncio.run(work())`` from synchronous code (session start and end, exit), on a thread of its own:
    whatever loop this thread has may be closed or still running. Returns the exception if it failed."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(work()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome.append(exc)

    thread = threading.Thread(target=run, name="test-databases")
    thread.start()
    thread.join(timeout=60)
    return outcome[0] if outcome else TimeoutError("test database clean-up")


def _drop_what_is_left() -> None:
    if not _created:
        return
    names = sorted(_created)
    failed = _in_a_thread_of_its_own(lambda: _drop_databases(names))
    if isinstance(failed, BaseException):
        print(f"tests: could not drop {names}: {type(failed).__name__}: {failed}", file=sys.stderr)


atexit.register(_drop_what_is_left)  # an interrupted session (KeyboardInterrupt, SIGTERM), or a stray one


def _process_started(pid: int) -> float | None:
    """When process ``pid`` on this machine started (epoch seconds); None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else _alive_since_unknown(pid)
    except (OSError, StopIteration, ValueError):
        return _alive_since_unknown(pid)
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, after the command's parentheses
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _alive_since_unknown(pid: int) -> float | None:
    """Without /proc: alive or not; an alive one counts as the owner (its start time is not known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return 0.0


def _abandoned(name: str, session_started: float) -> bool:
    """A test database that no running session can still be using."""
    match = _NAME.match(name)
    if match is None:
        return False
    epoch, pid = int(match["epoch"]), int(match["pid"])
    if epoch >= session_started:
        return False  # never one made since this session began (e.g. by a parallel xdist worker)
    if match["host"] != _HOST:
        return time.time() - epoch > 86400  # another machine's: its processes cannot be seen from here
    started = _process_started(pid)
    return started is None or started > epoch + 1  # gone, or its pid now belongs to a newer process


async def _untouched_for_a_day(admin, oid: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        changed = await admin.fetchval("SELECT (pg_stat_file('base/' || $1::oid::text)).modification", oid)
    except Exception:  # noqa: BLE001 - no right to look (not a superuser): leave it
        return False
    return changed is not None and time.time() - changed.timestamp() > 86400


async def _drop_abandoned(session_started: float) -> list[str]:
    admin = await _pg_admin()
    try:
        rows = await admin.fetch(
            "SELECT d.oid, d.datname, (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid)"
            " AS users FROM pg_database d WHERE d.datname LIKE 'tipline\\_test\\_%'"
        )
        names = []
        for row in rows:
            name = row["datname"]
            if _abandoned(name, session_started) or (
                # The old naming tells no owner: only one nobody is connected to, untouched for a day.
                _OLD_NAME.match(name) and row["users"] == 0 and await _untouched_for_a_day(admin, row["oid"])
            ):
                names.append(name)
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return names
    finally:
        await admin.close()


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
    dropped = _in_a_thread_of_its_own(lambda: _drop_abandoned(session_started))
    if isinstance(dropped, list) and dropped:  # an exception (no server): the fixtures skip or fail as before
        print(f"tests: dropped {len(dropped)} test database(s) left by earlier runs", file=sys.stderr)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _drop_what_is_left()  # a fixture that failed after creating its database, or a test that made its own


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
