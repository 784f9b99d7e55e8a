"""Coarse time for anonymous reports: what is stored and shown about when an anonymous report arrived says no
more than the hour — its times, its row ids, its receipt and reporter key, its audit entries, what the API and
the ledger show — and the reports of one group commit are registered in no particular order. A real-name
report keeps its exact time."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from service.audit.models import AuditEntry
from service.intake import service as intake_service
from service.intake.models import Receipt
from service.messages.models import ReporterKey
from service.platform.timeutil import as_utc, utcnow
from service.registry.models import Clue
from tests.helpers.app import auth, unique

HOUR_MS = 3_600_000


def _on_the_hour(moment: datetime) -> bool:
    return as_utc(moment).minute == 0 and moment.second == 0 and moment.microsecond == 0


def _id_millis(value: str) -> int:
    return uuid.UUID(value).int >> 80


async def _submit(harness, anonymous: bool) -> str:  # type: ignore[no-untyped-def]
    body = {"text": "派出所民警收了红包，案子压着不立。", "anonymous": anonymous}
    if not anonymous:
        body["submitter"] = {"name": "王五", "phone": "13900139000"}
    response = await harness.client.post("/api/v1/tips", json=body)
    assert response.status_code == 201, response.text
    number = response.json()["registry_number"]
    async with harness.runtime.session_factory() as session:
        return await session.scalar(select(Clue.id).where(Clue.registry_number == number))


async def test_an_anonymous_report_keeps_only_the_hour(harness) -> None:  # type: ignore[no-untyped-def]
    before = utcnow()
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"])  # there when it is registered
    clue_id = await _submit(harness, anonymous=True)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        receipt = await session.scalar(select(Receipt).where(Receipt.clue_id == clue_id))
        reporter_key = await session.get(ReporterKey, clue_id)
        entries = (await session.execute(select(AuditEntry).where(AuditEntry.object_id == clue_id))).scalars()
        registered = [e for e in entries if e.action == "clue.registered"]
    assert clue is not None and receipt is not None and reporter_key is not None
    assert _on_the_hour(clue.received_at) and _on_the_hour(clue.registered_at)
    assert as_utc(clue.received_at) <= before < as_utc(clue.received_at) + timedelta(hours=1)
    assert _on_the_hour(receipt.created_at) and _on_the_hour(reporter_key.created_at)
    for row_id in (clue.id, receipt.id):
        assert uuid.UUID(row_id).version == 7 and _id_millis(row_id) % HOUR_MS == 0
    assert registered and all(e.at.endswith(":00:00.000000Z") for e in registered)

    # What staff see: the API and the ledger show the hour.
    shown = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(supervisor))).json()
    assert _on_the_hour(datetime.fromisoformat(shown["received_at"]))
    ledger = await harness.client.get("/api/v1/ledger.csv", headers=auth(supervisor))
    rows = list(csv.reader(io.StringIO(ledger.text.lstrip("\ufeff"))))
    mine = [row for row in rows if clue.registry_number in row]
    assert mine and any(cell.endswith(":00") and len(cell) == 16 for cell in mine[0])  # "YYYY-MM-DD HH:00"


async def test_a_real_name_report_keeps_its_exact_time(harness) -> None:  # type: ignore[no-untyped-def]
    before = utcnow()
    clue_id = await _submit(harness, anonymous=False)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
    assert clue is not None
    assert abs(as_utc(clue.received_at) - before) < timedelta(seconds=30)
    assert abs(_id_millis(clue_id) - int(before.timestamp() * 1000)) < 30_000


async def test_one_batch_is_registered_in_no_particular_order(harness) -> None:  # type: ignore[no-untyped-def]
    """Registry numbers and audit entries of one registration batch do not follow the order the reports
    arrived in; each reporter still gets their own clue back."""
    runtime = harness.runtime
    prepared = [
        intake_service.prepare_tip(
            runtime,
            intake_service.Submission(text=f"第{i}条：法官吃请，案子判得不公。", channel="web"),
            actor="public",
        )
        for i in range(24)
    ]
    async with runtime.session_factory() as session:
        results = await intake_service.register_prepared(session, runtime=runtime, prepared=prepared)
        await session.commit()
    assert [r.clue_id for r in results] == [p.new.id for p in prepared]
    numbers = [int(r.registry_number.rsplit("-", 1)[1]) for r in results]
    assert sorted(numbers) == list(range(min(numbers), min(numbers) + 24))
    assert numbers != sorted(numbers)  # 1 in 24! that a shuffle keeps the order
    async with runtime.session_factory() as session:
        seqs = dict(
            (
                await session.execute(
                    select(AuditEntry.object_id, AuditEntry.id).where(
                        AuditEntry.action == "clue.registered",
                        AuditEntry.object_id.in_([p.new.id for p in prepared]),
                    )
                )
            ).all()
        )
    order = [seqs[p.new.id] for p in prepared]
    assert order != sorted(order)

    # The group commit: the channels' own writes (``also``) of one batch run in no particular order.
    called: list[int] = []

    def hook(index: int):  # type: ignore[no-untyped-def]
        async def also(session, submitted):  # type: ignore[no-untyped-def]
            called.append(index)
            return []

        return also

    more = [
        intake_service.prepare_tip(
            runtime,
            intake_service.Submission(text=f"第{i}条：看守所管教收钱。", channel="web"),
            actor="public",
        )
        for i in range(24)
    ]
    await asyncio.gather(*(runtime.intake.register(p, also=hook(i)) for i, p in enumerate(more)))
    assert sorted(called) == list(range(24))
    assert called != list(range(24))
