"""Backup and restore as docs/operations.md describes it: pg_dump of a database holding tips, pg_restore into
a fresh database, then `tipline audit verify` on the restored copy. Also: the dump holds no plaintext."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select

from service.app.main import create_app
from service.registry.models import Clue
from tests.helpers.app import make_settings
from tests.helpers.database import create_pg_database, drop_pg_database
from tests.helpers.tools import apt, require_executable

REPORT = "备份恢复测试：看守所民警孙某收了钱给在押人员办保外就医，材料是假的。"
ACCUSED = "孙备份"
ROOT = Path(__file__).resolve().parents[2]


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _count(app) -> int:  # type: ignore[no-untyped-def]
    async with app.state.runtime.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(Clue))


async def test_dump_restore_into_a_fresh_database_keeps_the_audit_chain(tmp_path: Path) -> None:
    pg_dump = require_executable("pg_dump", apt("postgresql-client"))
    pg_restore = require_executable("pg_restore", apt("postgresql-client"))
    source_url = await create_pg_database()
    restored_url = await create_pg_database()
    data_dir = tmp_path / "data"
    try:
        app = create_app(make_settings(data_dir, source_url))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tipline.test") as client:
                for i in range(3):
                    response = await client.post(
                        "/api/v1/tips", json={"text": f"{REPORT}{i}", "accused": {"name": ACCUSED}}
                    )
                    assert response.status_code == 201, response.text
            clues = await _count(app)

        dump = tmp_path / "tipline.dump"
        # -Z0: uncompressed, so the plaintext check below reads the real bytes.
        await asyncio.to_thread(
            subprocess.run,
            [pg_dump, "-Fc", "-Z0", "--no-owner", "-f", str(dump), _libpq(source_url)],
            check=True,
            timeout=60,
        )
        raw = dump.read_bytes()
        assert REPORT.encode() not in raw and ACCUSED.encode() not in raw  # already encrypted in the DB

        await asyncio.to_thread(
            subprocess.run,
            [pg_restore, "--no-owner", "--exit-on-error", "-d", _libpq(restored_url), str(dump)],
            check=True,
            timeout=60,
        )
        env = {
            **os.environ,
            "TIPLINE_DATABASE_URL": restored_url,
            "TIPLINE_DATA_DIR": str(data_dir),
            "TIPLINE_ENVIRONMENT": "development",
        }
        verify = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "service", "audit", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert verify.returncode == 0, verify.stderr
        assert "audit trail intact" in verify.stdout

        restored = create_app(make_settings(data_dir, restored_url), frozenset({"staff"}))
        async with restored.router.lifespan_context(restored):
            assert await _count(restored) == clues >= 3
    finally:
        await drop_pg_database(source_url)
        await drop_pg_database(restored_url)
