# ruff: noqa: S603, S607 - the tests run our own command line and PostgreSQL's client
"""The app under test in process (``running_app``, ``Harness``), its settings, and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.app.main import create_app
from service.app.runtime import Runtime
from service.auth import service as auth_service
from service.compartments import service as compartments
from service.platform.settings import Settings
from tests.helpers import REPO_ROOT


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
        """Create a staff account straight through the service; returns (staff id, token). An investigator
        given no unit gets a unit of their own: staff of no unit cannot be assigned clues (recusal)."""
        if unit_id is None and "investigator" in roles:
            unit_id = await self.add_unit(unique("核查单位"))
        async with self.runtime.session_factory() as session:
            staff, personal = await auth_service.add_staff(
                session, name=name, roles=roles, unit_id=unit_id, actor="test", keys=self.runtime.keys
            )
            _, token = await auth_service.issue_token(
                session, staff=staff, ttl_days=1, actor="test", personal=personal
            )
            await session.commit()
            return staff.id, token

    async def open_item(self, token: str, clue_id: str, data: bytes, binding: str) -> bytes:
        """An item sealed to a clue's own key (compartments), opened as the holder of ``token`` would."""
        async with self.runtime.session_factory() as session:
            principal = await auth_service.authenticate(session, token)
            return await session.run_sync(
                lambda s: compartments.open_from_clue(
                    s, clue_id=clue_id, unlocked=principal.unlocked, data=data, binding=binding
                )
            )

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


def run_cli_with_passphrases(
    args: list[str], env: dict[str, str], phrases: list[str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``run_cli`` for the custodial commands: the custodians' passphrases go through a pipe
    (``--passphrase-fd``), never argv or the environment."""
    read, write = os.pipe()
    os.write(write, ("\n".join(phrases) + "\n").encode())
    os.close(write)
    try:
        return subprocess.run(
            [sys.executable, "-m", "service", *args, "--passphrase-fd", str(read)],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            pass_fds=(read,),
        )
    finally:
        os.close(read)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
