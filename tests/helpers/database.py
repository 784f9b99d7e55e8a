"""The PostgreSQL side of the test databases: a fresh database per use on the local server (127.0.0.1:5432,
override with TIPLINE_TEST_PG_DSN). A missing server skips locally and fails under CI.

Every database made here is dropped: by ``drop_pg_database`` when its user is done, at the end of the
session or at exit when a test failed or the run was interrupted, and — for a run that was killed outright
— at the start of the next session (``drop_abandoned``)."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import os
import re
import socket
import sys
import threading
import time
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


# Test databases are named tipline_test_<host>_<epoch>_<pid>_<random>: whoever finds one left behind can tell
# whether the session that made it may still be running (same host, that process alive since before it).
PG_PREFIX = "tipline_test_"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]
_NAME = re.compile(rf"^{PG_PREFIX}(?P<host>[0-9a-f]{{4}})_(?P<epoch>\d+)_(?P<pid>\d+)_[0-9a-f]+$")
_OLD_NAME = re.compile(rf"^{PG_PREFIX}[0-9a-f]{{12}}$")  # before owners were named: no way to tell
_created: set[str] = set()  # made by this process and not dropped yet: dropped at the latest at exit


async def create_pg_database() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy URL."""
    try:
        admin = await pg_admin()
    except (OSError, Exception) as exc:  # noqa: BLE001 - any connection failure means "no server"
        missing(
            f"the PostgreSQL server at {PG_ADMIN_DSN.rsplit('@', 1)[-1]} ({type(exc).__name__})",
            "start one (apt-get install postgresql) or set TIPLINE_TEST_PG_DSN",
        )
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
    admin = await pg_admin()
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _created.discard(name)
    finally:
        await admin.close()


def in_a_thread_of_its_own(work) -> object:  # type: ignore[no-untyped-def]
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


def drop_what_is_left() -> None:
    if not _created:
        return
    names = sorted(_created)
    failed = in_a_thread_of_its_own(lambda: _drop_databases(names))
    if isinstance(failed, BaseException):
        print(f"tests: could not drop {names}: {type(failed).__name__}: {failed}", file=sys.stderr)


atexit.register(drop_what_is_left)  # an interrupted session (KeyboardInterrupt, SIGTERM), or a stray one


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


async def drop_abandoned(session_started: float) -> list[str]:
    admin = await pg_admin()
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


def count_clues(database_url: str) -> int:
    """How many clues a (server's) database holds, from synchronous code such as a browser test."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def count() -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return int((await connection.execute(text("SELECT count(*) FROM clues"))).scalar_one())
        finally:
            await engine.dispose()

    return int(_run(count()))
