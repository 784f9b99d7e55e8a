"""Database: declarative base, engine and session factories, the per-request session dependency."""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, Executable, MetaData, String, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from service.platform.timeutil import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


def new_id(*, hour_only: bool = False) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Time-ordered, so a batch of
    new rows lands on the last page of each index instead of one random page per row (on SQLite every
    touched page is written to the WAL at commit); still unguessable.

    ``hour_only`` (the rows of an anonymous report): the time part is the start of the hour, so the id says
    no more about when the report arrived than the hour its stored times keep. Inside ``id_batch()`` the
    next 32 bits are the batch's stamp — one per batch, increasing from a random start each hour — and the
    last 42 random: a batch's rows still land after the previous batch's in each index (locality), but in
    no order among themselves, and the stamp counts batches, which the registry numbers show anyway.
    Outside a batch the 74 bits are all random."""
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big") & _RANDOM_BITS
    if hour_only:
        millis -= millis % 3_600_000
        stamp = _batch_stamp.get()
        if stamp is not None:
            random = (stamp >> 20) << 64 | (stamp & 0xFFFFF) << 42 | (random & ((1 << 42) - 1))
    return str(uuid.UUID(int=millis << 80 | _VERSION_AND_VARIANT | random))


_batch_stamp: ContextVar[int | None] = ContextVar("id_batch_stamp", default=None)
_stamps = {"hour": -1, "next": 0}
_stamps_lock = threading.Lock()


@contextmanager
def id_batch() -> Iterator[None]:
    """The anonymous-report rows made inside share one stamp (see ``new_id``): one preparing or registering
    batch."""
    hour = time.time_ns() // 1_000_000 // 3_600_000
    with _stamps_lock:
        if _stamps["hour"] != hour:  # a fresh random start each hour: the stamp says nothing across hours
            _stamps["hour"], _stamps["next"] = hour, secrets.randbelow(1 << 31)
        _stamps["next"] += 1
        stamp = _stamps["next"] & 0xFFFFFFFF
    token = _batch_stamp.set(stamp)
    try:
        yield
    finally:
        _batch_stamp.reset(token)


_RANDOM_BITS = (0xFFF << 64) | ((1 << 62) - 1)  # rand_a (12 bits) and rand_b (62 bits)
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)


IdColumn = String(36)


def private_directory(path: Path) -> Path:
    """A directory only this account may enter (0700), whatever the umask: made so, or made so now."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_sqlite_file(url: str) -> None:
    """The SQLite database, its WAL, shared-memory and journal files readable by this account alone (0600),
    whatever the umask. SQLite creates its WAL and SHM files with the database file's mode, so a database
    file made 0600 before SQLite first opens it keeps them so too; existing ones are corrected."""
    path = _sqlite_path(url)
    if path is None:
        return
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is a new database
    for name in ("", "-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + name)
        if companion.exists():
            companion.chmod(0o600)


def _sqlite_path(url: str) -> Path | None:
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    rest = rest.split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


# A database error's text never carries the statement's values (sealed or not, they are report data): an
# exception that reaches a log, the CLI or a trace shows the statement only.
HIDE = {"hide_parameters": True}


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_async_engine(url, pool_size=4, max_overflow=0, pool_timeout=60, **HIDE)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **HIDE)


@dataclass(frozen=True)
class _DriverStatement:
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]  # each row parameter's name and processor
    constants: dict[str, Any]  # values written into the statement itself (``values(seq=0)``), processed


_driver_statements: dict[tuple[Executable, type, tuple[str, ...]], _DriverStatement] = {}


def execute_many(connection: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """``connection.execute(statement, rows)`` for the write statements on every report's path (inserts,
    the audit head's update), without SQLAlchemy's per-execution work on SQLite: the statement is compiled
    once for the driver and the rows go straight to the DB-API cursor's ``executemany``, values converted
    by the same bind processors SQLAlchemy would use (times, booleans). Same transaction, same connection;
    small intake batches spent more time in statement execution than in SQLite. Every row must carry every
    parameter: a column left to a Python-side default fails loudly at compile time instead."""
    if not rows:
        return
    if connection.dialect.name != "sqlite":
        connection.execute(statement, rows)
        return
    key = (statement, type(connection.dialect), tuple(rows[0]))
    driver = _driver_statements.get(key)
    if driver is None:
        driver = _driver_statements[key] = _compile_for_driver(statement, connection.dialect, key[2])
    binds, constants = driver.binds, driver.constants
    parameters = [
        tuple(
            constants[name] if name in constants else row[name] if process is None else process(row[name])
            for name, process in binds
        )
        for row in rows
    ]
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(driver.sql, parameters)
    except connection.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy raises it, without the values
        raise DBAPIError.instance(
            driver.sql, None, exc, connection.dialect.loaded_dbapi.Error, hide_parameters=True
        ) from exc
    finally:
        cursor.close()


def _compile_for_driver(statement: Executable, dialect: Any, keys: tuple[str, ...]) -> _DriverStatement:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.positiontup is None:
        raise ValueError(f"execute_many needs every value given and positional parameters: {statement}")
    processors = compiled._bind_processors
    binds = tuple((name, processors.get(name)) for name in compiled.positiontup)
    constants = {}
    for name, process in binds:
        if name not in keys:
            value = compiled.binds[name].effective_value
            constants[name] = value if process is None else process(value)
    return _DriverStatement(str(compiled), binds, constants)


def create_sqlite_writer_engine(url: str) -> Engine:
    """A synchronous engine on the same SQLite file, for batched intake writes: a whole batch runs in one
    worker-thread call instead of one thread hop per statement through aiosqlite."""
    private_sqlite_file(url)
    engine = sa_create_engine(
        url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1), pool_size=1, max_overflow=0, **HIDE
    )
    _configure_sqlite(engine)
    return engine


def create_sqlite_reader_engine(url: str) -> AsyncEngine:
    """Read-only transactions on the same SQLite file: a plain (deferred) BEGIN, so readers take no write
    lock and never hold up intake; ``query_only`` makes any write through it fail loudly."""
    engine = create_async_engine(url, pool_size=4, max_overflow=0, pool_timeout=60, **HIDE)
    _configure_sqlite(engine, read_only=True)
    return engine


def _configure_sqlite(engine: AsyncEngine | Engine, *, read_only: bool = False) -> None:
    """WAL for concurrent readers, real foreign keys, secure_delete so freed pages hold no old plaintext,
    and BEGIN IMMEDIATE so a transaction never fails half-way on a read-to-write lock upgrade."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=30000",
            "secure_delete=ON",
            *(["query_only=ON"] if read_only else []),
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_session_factory(
    engine: AsyncEngine, *, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """``info`` carries per-deployment settings services read from the session (audit chains and suite)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=dict(info or {}))
