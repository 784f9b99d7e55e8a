"""Alembic environment: async engines, and a connection handed in by the service or the tests."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from service.app.models import Base
from service.platform.db import create_engine

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from service.platform.settings import load_settings

        url = load_settings().effective_database_url
    asyncio.run(_run_online(url))


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
main()
