"""Schema changes only through Alembic. The service refuses to start on an old schema unless told to
upgrade; an empty database is initialised (that is first-run set-up, not an upgrade)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command

REPO_ROOT = Path(__file__).resolve().parents[2]


class SchemaOutOfDate(RuntimeError):
    pass


def alembic_config() -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> tuple[str | None, bool]:
    current = MigrationContext.configure(connection).get_current_revision()
    return current, bool(inspect(connection).get_table_names())


def _migrate(connection: Connection, action: str, target: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, target)


async def run_migrations(engine: AsyncEngine, action: str = "upgrade", target: str = "head") -> None:
    async with engine.connect() as connection:
        await connection.run_sync(_migrate, action, target)
        await connection.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        current, _ = await connection.run_sync(_current)
        await connection.rollback()
    return current


async def ensure_schema(engine: AsyncEngine, *, auto_upgrade: bool) -> None:
    async with engine.connect() as connection:
        current, has_tables = await connection.run_sync(_current)
        await connection.rollback()
    head = head_revision()
    if current == head:
        return
    if current is None and not has_tables:
        await run_migrations(engine)
        return
    if auto_upgrade:
        await run_migrations(engine)
        return
    raise SchemaOutOfDate(
        f"database schema is at revision {current or 'unknown'} but this version needs {head}: "
        "run `tipline db upgrade` (or set TIPLINE_DATABASE_AUTO_UPGRADE=true) after taking a backup"
    )
