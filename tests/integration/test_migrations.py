"""Schema changes only through Alembic: models and migrations agree on both databases, every migration
goes down and up again, and the service refuses to start on an old schema."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from service.app.main import create_app
from service.app.models import Base
from service.platform.db import create_engine
from service.platform.migrations import (
    SchemaOutOfDate,
    alembic_config,
    current_revision,
    head_revision,
    run_migrations,
)
from tests.helpers.app import cli_env, make_settings, run_cli


def _diff(connection) -> list:  # type: ignore[no-untyped-def]
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_models_and_migrations_agree_and_round_trip(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        await run_migrations(engine, "upgrade", "head")
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
        await run_migrations(engine, "downgrade", "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables <= {"alembic_version"}
        await run_migrations(engine, "upgrade", "head")
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_each_migration_steps_down_and_up(fresh_database_url: str) -> None:
    revisions = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    engine = create_engine(fresh_database_url)
    try:
        await run_migrations(engine, "upgrade", "head")
        for revision in revisions:  # newest first
            await run_migrations(engine, "downgrade", "-1")
            await run_migrations(engine, "upgrade", revision)
            await run_migrations(engine, "downgrade", "-1")
        await run_migrations(engine, "upgrade", "head")
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_service_refuses_an_old_schema_and_upgrades_when_told(
    tmp_path, fresh_database_url: str
) -> None:  # type: ignore[no-untyped-def]
    revisions = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    if len(revisions) < 2:
        pytest.skip("only one migration exists")
    engine = create_engine(fresh_database_url)
    await run_migrations(engine, "upgrade", revisions[-1])  # the oldest
    await engine.dispose()

    app = create_app(make_settings(tmp_path, fresh_database_url))
    with pytest.raises(SchemaOutOfDate, match="tipline db upgrade"):
        async with app.router.lifespan_context(app):
            pass
    result = run_cli(["audit", "verify"], cli_env(tmp_path, fresh_database_url))
    assert result.returncode == 2 and "tipline db upgrade" in result.stderr

    app = create_app(make_settings(tmp_path, fresh_database_url, database_auto_upgrade=True))
    async with app.router.lifespan_context(app):
        pass
    engine = create_engine(fresh_database_url)
    assert await current_revision(engine) == head_revision()
    await engine.dispose()


async def test_db_commands(tmp_path, fresh_database_url: str) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, fresh_database_url)
    assert run_cli(["db", "current"], env).stdout.strip() == "empty"
    upgraded = run_cli(["db", "upgrade"], env)
    assert upgraded.returncode == 0 and head_revision() in upgraded.stdout
    assert run_cli(["db", "current"], env).stdout.strip() == head_revision()


async def test_audit_triggers_survive_in_the_migrated_schema(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        await run_migrations(engine, "upgrade", "head")
        async with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                names = (
                    await connection.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
                ).scalars()
            else:
                names = (
                    await connection.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
                ).scalars()
            assert {"audit_entries_no_update", "audit_entries_no_delete", "audit_entries_append_only"} & set(
                names
            )
    finally:
        await engine.dispose()
