"""Dependencies every HTTP edge shares: the runtime, the request's write session (committed before the
response is sent) and the read-only session for ledger and statistics reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.platform.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:  # async: a sync dependency costs a thread hop
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


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
