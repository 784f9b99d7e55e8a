"""The intake pipeline with worker processes (as ``tipline serve`` runs it): tips prepared — and on SQLite
registered — in a worker beside the event loop, on both databases; bad tips fail alone; a taxonomy reload
reaches the worker; a dead worker is replaced without losing or doubling anything."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from service.audit import service as audit_service
from service.classification import classifier
from service.classification.taxonomy import DEFAULT_TAXONOMY_PATH
from service.intake import pipeline
from service.intake.service import PreparedTip, Submission
from service.platform.errors import Invalid, TemporarilyUnavailable
from service.platform.workers import WorkerUnavailable
from service.registry.models import Clue
from tests.helpers.app import running_app
from tests.helpers.registry import clue_fields

REPORT = "派出所民警收受红包后对报案不予立案，第{}次反映。"


async def clue_count(harness) -> int:  # type: ignore[no-untyped-def]
    async with harness.runtime.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(Clue))


async def test_reports_go_through_a_worker_sealed_numbered_and_audited(
    tmp_path: Path, fresh_database_url: str
) -> None:
    async with running_app(tmp_path, fresh_database_url, intake_workers=1) as harness:
        runtime = harness.runtime
        assert len(runtime.intake.worker_pids()) == 1  # started with the app, not on the first report
        bodies = [
            {"text": REPORT.format(i)}
            if i % 2
            else {
                "text": REPORT.format(i),
                "anonymous": False,
                "submitter": {"name": "举报人", "phone": "13800138000"},
            }
            for i in range(30)
        ]
        responses = await asyncio.gather(*(harness.client.post("/api/v1/tips", json=b) for b in bodies))
        assert [r.status_code for r in responses] == [201] * 30
        numbers = {r.json()["registry_number"] for r in responses}
        assert len(numbers) == 30
        async with runtime.session_factory() as session:
            clues = list((await session.execute(select(Clue))).scalars())
            assert (await audit_service.verify(session)).problem is None
        assert {c.registry_number for c in clues} == numbers
        texts = {(await clue_fields(harness, c.id))["content"]["text"] for c in clues}
        assert texts == {b["text"] for b in bodies}
        assert sum(c.identity is not None for c in clues) == 15  # sealed to the identity key, in the worker
        status = await harness.client.post(
            "/api/v1/receipt/status", json={"receipt": responses[0].json()["receipt"]}
        )
        assert status.status_code == 200


async def test_a_bad_submission_in_a_worker_batch_fails_alone(
    tmp_path: Path, fresh_database_url: str
) -> None:
    async with running_app(tmp_path, fresh_database_url, intake_workers=1) as harness:
        intake = harness.runtime.intake
        good = [Submission(text=REPORT.format(i), channel="web") for i in range(8)]
        bad = Submission(text=REPORT.format("x"), channel="carrier-pigeon")
        results = await asyncio.gather(
            *(intake.submit(s, actor="public") for s in [*good[:4], bad, *good[4:]]), return_exceptions=True
        )
        assert isinstance(results[4], Invalid)
        assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 4)
        assert await clue_count(harness) == 8
        prepared = await intake.prepare(good[0], actor="public")  # channels with writes of their own
        assert isinstance(prepared, PreparedTip) and prepared.compartment.fields["content"]


async def test_a_taxonomy_reload_reaches_the_worker(tmp_path: Path, fresh_database_url: str) -> None:
    changed = tmp_path / "taxonomy.json"
    shutil.copy(DEFAULT_TAXONOMY_PATH, changed)
    data = json.loads(changed.read_text(encoding="utf-8"))
    data["version"] = "reloaded-in-the-server-process"
    changed.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    async with running_app(tmp_path, fresh_database_url, intake_workers=1) as harness:
        before = await harness.client.post("/api/v1/tips", json={"text": REPORT.format(1)})
        try:
            classifier.reload_taxonomy(changed)  # what the admin's reload does, in this process
            after = await harness.client.post("/api/v1/tips", json={"text": REPORT.format(2)})
        finally:
            classifier.reload_taxonomy(DEFAULT_TAXONOMY_PATH)
        async with harness.runtime.session_factory() as session:
            versions = dict(
                (await session.execute(select(Clue.registry_number, Clue.taxonomy_version))).all()
            )
    assert versions[after.json()["registry_number"]] == "reloaded-in-the-server-process"
    assert versions[before.json()["registry_number"]] != "reloaded-in-the-server-process"


async def test_a_killed_worker_is_replaced_and_nothing_is_lost(
    tmp_path: Path, fresh_database_url: str
) -> None:
    async with running_app(tmp_path, fresh_database_url, intake_workers=1) as harness:
        intake = harness.runtime.intake
        first = await harness.client.post("/api/v1/tips", json={"text": REPORT.format(1)})
        (pid,) = intake.worker_pids()
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):  # until the pool has noticed
            if pid not in intake.worker_pids():
                break
            await asyncio.sleep(0.05)
        # The pool is broken before anything was handed to it: done here instead, then a new worker.
        during = await harness.client.post("/api/v1/tips", json={"text": REPORT.format(2)})
        after = await harness.client.post("/api/v1/tips", json={"text": REPORT.format(3)})
        assert [r.status_code for r in (first, during, after)] == [201, 201, 201]
        new_pids = intake.worker_pids()
        assert new_pids and pid not in new_pids
        assert await clue_count(harness) == 3


class _DiesMidBatch:
    """A pool whose worker dies while it holds the batch (the commit's fate unknown)."""

    async def run(self, fn, *args):  # type: ignore[no-untyped-def]
        raise WorkerUnavailable(started=True)

    def pids(self) -> list[int]:
        return []

    def shutdown(self) -> None:
        pass


async def test_a_batch_whose_worker_died_is_answered_503_and_never_registered_twice(
    tmp_path: Path, fresh_database_url: str
) -> None:
    async with running_app(tmp_path, fresh_database_url, intake_workers=1) as harness:
        intake = harness.runtime.intake
        real_pool, intake._pool = intake._pool, _DiesMidBatch()
        try:
            response = await harness.client.post("/api/v1/tips", json={"text": REPORT.format(1)})
            prepared = await intake.prepare(
                Submission(text=REPORT.format(2), channel="email"), actor="public"
            )
        finally:
            intake._pool = real_pool
        if intake.worker_registers:  # SQLite: the worker was registering it
            assert response.status_code == 503 and response.headers["retry-after"]
            assert response.json()["error"]["code"] == "temporarily_unavailable"
            assert await clue_count(harness) == 0
        else:  # PostgreSQL: the worker only prepared it; prepared again here and registered once
            assert response.status_code == 201
            assert await clue_count(harness) == 1
        assert isinstance(prepared, PreparedTip)  # preparing alone is always safe to redo


def test_errors_cross_the_pipe_without_their_messages() -> None:
    db_error = OperationalError("INSERT … 13800138000", {"phone": "13800138000"}, Exception("locked"))
    assert isinstance(pipeline._portable(db_error), TemporarilyUnavailable)
    other = pipeline._portable(ValueError("举报人 13800138000"))
    assert "13800138000" not in str(other) and "ValueError" in str(other)
    invalid = Invalid("来源或渠道无效", message_en="unknown source or channel")
    assert pipeline._portable(invalid) is invalid


@pytest.mark.parametrize("workers, expected", [(0, 0), (3, 3)])
def test_worker_count_is_configurable(tmp_path: Path, workers: int, expected: int) -> None:
    from tests.helpers.app import make_settings

    settings = make_settings(tmp_path, "sqlite+aiosqlite:///x.db", intake_workers=workers)
    assert pipeline.intake_worker_count(settings) == expected
