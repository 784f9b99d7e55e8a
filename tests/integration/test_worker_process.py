"""``tipline serve`` runs the job loop in a process of its own: background work is done there (the
near-duplicate queue drains), ``/livez`` tells whether it turns, and a job process that dies is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from service.app.main import create_app
from service.app.processes import WorkerProcess
from service.classification.models import NearDuplicatePending
from tests.helpers.app import make_settings

TEXT = "交警大队某中队长的老婆开了一家拖车场，事故车辆都被指定拖到她那里，收费很高。第{}次。"


async def _pending(runtime) -> int:  # type: ignore[no-untyped-def]
    async with runtime.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(NearDuplicatePending))


async def _until(condition, seconds: float = 40.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.25)


async def test_the_job_loop_runs_in_its_own_process_and_is_replaced_when_it_dies(
    tmp_path: Path, fresh_database_url: str
) -> None:
    app = create_app(make_settings(tmp_path, fresh_database_url, worker_poll_seconds=0.2), run_worker=True)
    async with app.router.lifespan_context(app):
        runtime, jobs = app.state.runtime, app.state.worker
        assert isinstance(jobs, WorkerProcess) and jobs.alive()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tipline.test") as client:
            for i in range(3):
                assert (await client.post("/api/v1/tips", json={"text": TEXT.format(i)})).status_code == 201

            async def drained() -> bool:
                return await _pending(runtime) == 0

            await _until(drained)  # linked by the job process: this process runs no job loop
            assert (await client.get("/livez")).status_code == 200

            first = jobs._process.pid
            os.kill(first, signal.SIGKILL)
            await asyncio.sleep(0.5)

            async def replaced() -> bool:
                return jobs.alive() and jobs._process.pid != first

            await _until(replaced, 15.0)
            assert (await client.get("/livez")).status_code == 200
            assert (await client.post("/api/v1/tips", json={"text": TEXT.format(9)})).status_code == 201
            await _until(drained)  # the new process does the work
    assert not jobs.alive()  # stopped with the server
