"""Faults (issue 9): the server SIGKILLed under load, and the database going away, on both databases.

- 25 kills of a real ``tipline serve`` per database while clients submit tips: every tip that got 201 is there afterwards
  (registry number, content that opens with the case key, the receipt code finds it), no clue is visible
  without its receipt and its audit entry, and ``tipline audit verify`` passes. The kills come 0.2-0.8 s
  after each restart answers, so this holds only if a restarted server takes reports at once: none of the
  killed one's helpers may linger (``service.platform.workers.spawn_helper``). At least one acknowledged tip per kill
  on the reference machine (tests/pace.py), scaled by this machine's pace measured between the rounds.
- The database unreachable: intake answers 503 with Retry-After (JSON), recovers by itself when the
  database returns, and loses nothing it acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.intake.models import Receipt
from service.intake.receipts import normalise_receipt, receipt_hash
from service.registry.models import Clue
from tests.helpers import tipline_server
from tests.helpers.app import cli_env, run_cli, running_app
from tests.helpers.pace import Pace, cpu_pace_over, cpu_seconds
from tests.helpers.registry import clue_fields

# 25 per database: each round starts a whole server (about 8 s with its workers), so 50 cost six minutes
# a database, most of it start-up rather than kills.
KILLS = 25
LETTERS = str.maketrans("0123456789", "ghijklmnop")  # digits in a marker could be masked as a phone number
NO_SMTP = ("--smtp-port", "0")  # the SMTP receiver has its own kill test (test_mail_crash.py)
TEXT = "看守所管教民警收了家属的钱，帮忙把人弄去保外就医。编号"


class Load:
    """Clients posting tips as fast as they can; remembers every acknowledged one."""

    def __init__(self, base_url: str, threads: int = 3) -> None:
        self.base_url = base_url
        self.stop = threading.Event()
        self.acknowledged: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self.stop.is_set():
                marker = uuid.uuid4().hex.translate(LETTERS)
                try:
                    response = client.post("/api/v1/tips", json={"text": f"{TEXT}{marker}"})
                except httpx.HTTPError:
                    time.sleep(0.01)
                    continue
                if response.status_code == 201:
                    body = response.json()
                    with self.lock:
                        self.acknowledged.append(
                            {"marker": marker, "number": body["registry_number"], "receipt": body["receipt"]}
                        )
                elif response.status_code != 503:
                    raise AssertionError(f"unexpected {response.status_code}")

    def __enter__(self) -> Load:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=15)


async def check_everything_acknowledged_is_intact(
    data_dir: Path, database_url: str, acknowledged: list[dict[str, str]]
) -> None:
    async with running_app(data_dir, database_url) as harness:
        runtime = harness.runtime
        receipt_key = runtime.lookup_key("receipt")
        async with runtime.session_factory() as session:
            clues = {c.registry_number: c for c in (await session.execute(select(Clue))).scalars()}
            for ack in acknowledged:
                clue = clues.get(ack["number"])
                assert clue is not None, f"acknowledged {ack['number']} is missing"
                content = (await clue_fields(harness, clue.id))["content"]
                assert content["text"] == f"{TEXT}{ack['marker']}"
                code_hash = receipt_hash(receipt_key, normalise_receipt(ack["receipt"]))
                found = await session.scalar(select(Receipt.clue_id).where(Receipt.code_hash == code_hash))
                assert found == clue.id
            # Nothing half-written: every clue has its receipt and its registration entry.
            without_receipt = await session.scalar(
                select(func.count()).select_from(Clue).where(~Clue.id.in_(select(Receipt.clue_id)))
            )
            assert without_receipt == 0
            registered = select(AuditEntry.object_id).where(AuditEntry.action == "clue.registered")
            without_audit = await session.scalar(
                select(func.count()).select_from(Clue).where(~Clue.id.in_(registered))
            )
            assert without_audit == 0


def _kill_under_load(env: dict[str, str], log_dir: Path) -> tuple[list[dict[str, str]], Pace]:
    rng = random.Random(9)  # noqa: S311 - timing only
    acknowledged: list[dict[str, str]] = []
    pace_samples = []
    for round_ in range(KILLS):
        pace_samples.append(cpu_seconds())  # the machine's pace across the run, not only at its start
        with tipline_server(env, log_dir / f"server-{round_ % 2}.log", *NO_SMTP) as server:
            with Load(server.base_url) as load:
                # The server starts its intake worker and job process too: give each round time to get going.
                time.sleep(rng.uniform(0.2, 0.8))
                os.kill(server.process.pid, signal.SIGKILL)
                server.process.wait()
            acknowledged.extend(load.acknowledged)
    return acknowledged, cpu_pace_over(pace_samples)


@pytest.mark.slow
async def test_sigkill_under_load_loses_nothing_acknowledged(backend, tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, fresh_database_url)
    started = time.monotonic()
    acknowledged, pace = _kill_under_load(env, tmp_path)
    elapsed = time.monotonic() - started
    least = pace.floor(KILLS)
    assert len(acknowledged) >= least, (
        f"too little load: {len(acknowledged)} tips in {elapsed:.0f}s (at least {least:.0f} here, {pace})"
    )
    await check_everything_acknowledged_is_intact(tmp_path, fresh_database_url, acknowledged)
    verify = run_cli(["audit", "verify"], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    rate = len(acknowledged) / elapsed
    print(
        f"{backend}: {KILLS} kills, {len(acknowledged)} acknowledged tips in {elapsed:.0f}s ({rate:.2f}/s), "
        f"{pace}"
    )


def _tip(client: httpx.Client, marker: str) -> httpx.Response:
    return client.post("/api/v1/tips", json={"text": f"{TEXT}{marker}"})


async def _pg_admin_execute(*statements: str) -> None:
    from tests.helpers.database import pg_admin

    admin = await pg_admin()
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


async def test_database_outage_gives_503_and_recovers(backend, tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, fresh_database_url)
    acknowledged: list[dict[str, str]] = []
    with (
        tipline_server(env, tmp_path / "server.log", *NO_SMTP) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):

        def submit_ok() -> None:
            marker = uuid.uuid4().hex.translate(LETTERS)
            response = _tip(client, marker)
            assert response.status_code == 201, response.text
            body = response.json()
            acknowledged.append(
                {"marker": marker, "number": body["registry_number"], "receipt": body["receipt"]}
            )

        submit_ok()
        if backend == "postgresql":
            name = fresh_database_url.rsplit("/", 1)[1]
            await _pg_admin_execute(
                f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",  # noqa: S608
            )
            holder = None
        else:
            # Another process holds the write lock; the server's writes time out (busy_timeout) and fail.
            holder = sqlite3.connect(tmp_path / "own.db", timeout=1, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
        try:
            refused = _tip(client, uuid.uuid4().hex)
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) > 0
            error = refused.json()["error"]
            assert error["message"] and error["message_en"]
            assert TEXT not in refused.text
        finally:
            if holder is not None:
                holder.execute("ROLLBACK")
                holder.close()
            else:
                name = fresh_database_url.rsplit("/", 1)[1]
                await _pg_admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        # Recovers by itself: no restart.
        deadline = time.monotonic() + 30
        while True:
            marker = uuid.uuid4().hex.translate(LETTERS)
            response = _tip(client, marker)
            if response.status_code == 201:
                body = response.json()
                acknowledged.append(
                    {"marker": marker, "number": body["registry_number"], "receipt": body["receipt"]}
                )
                break
            assert response.status_code == 503 and time.monotonic() < deadline, response.text
            await asyncio.sleep(0.5)
        submit_ok()
    await check_everything_acknowledged_is_intact(tmp_path, fresh_database_url, acknowledged)
