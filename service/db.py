"""Database: declarative base, engine and session factories, the per-request session dependency."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, Engine, MetaData, String, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from service.timeutil import as_utc

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


def new_id() -> str:
    return str(uuid.uuid4())


IdColumn = String(36)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=4, max_overflow=0, pool_timeout=60)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def create_sqlite_writer_engine(url: str) -> Engine:
    """A synchronous engine on the same SQLite file, for batched intake writes: a whole batch runs in one
    worker-thread call instead of one thread hop per statement through aiosqlite."""
    engine = sa_create_engine(
        url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1), pool_size=1, max_overflow=0
    )
    _configure_sqlite(engine)
    return engine


def create_sqlite_reader_engine(url: str) -> AsyncEngine:
    """Read-only transactions on the same SQLite file: a plain (deferred) BEGIN, so readers take no write
    lock and never hold up intake; ``query_only`` makes any write through it fail loudly."""
    engine = create_async_engine(url, pool_size=4, max_overflow=0, pool_timeout=60)
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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: commit on success, roll back on any error."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a 2xx always means "durably stored".
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session for ledger listings and statistics: on the replica when
    TIPLINE_DATABASE_READ_URL is set, else on the primary. On PostgreSQL the transaction is READ ONLY, so a
    write through it fails loudly; it is always rolled back. Reads of content need an audit entry in the
    same transaction, so they use ``SessionDep``, never this."""
    factory: async_sessionmaker[AsyncSession] = getattr(
        request.app.state, "read_session_factory", request.app.state.session_factory
    )
    async with factory() as session:
        try:
            if session.bind.dialect.name == "postgresql":
                await session.execute(text("SET TRANSACTION READ ONLY"))
            yield session
        finally:
            await session.rollback()


ReadSessionDep = Annotated[AsyncSession, Depends(read_session)]
