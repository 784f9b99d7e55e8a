"""What every command of the ``tipline`` CLI shares: the actor its audit entries name, and one transaction per
action on a migrated database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from service.platform.db import create_engine, create_session_factory
from service.platform.migrations import ensure_schema
from service.platform.runtime import session_info

T = TypeVar("T")
CLI_ACTOR = "cli"


async def in_session(settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:  # type: ignore[no-untyped-def]
    """One transaction for one CLI action, on a migrated database."""
    engine = create_engine(settings.effective_database_url)
    try:
        await ensure_schema(engine, auto_upgrade=False)
        async with create_session_factory(engine, info=session_info(settings))() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()
