"""Group commit: a bad tip in a batch fails alone; the others are committed and answered."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service.intake import service as intake_service
from service.registry.models import Clue
from tests.helpers.app import Harness


async def test_one_bad_tip_does_not_sink_its_batch(harness: Harness) -> None:
    runtime = harness.runtime

    def prepared(text: str) -> intake_service.PreparedTip:
        return intake_service.prepare_tip(
            runtime, intake_service.Submission(text=text, channel="web"), actor="public"
        )

    good = [prepared(f"批量第{i}条：法官私下会见当事人。") for i in range(10)]
    duplicate = good[3]  # the same clue id twice: the second must fail on its own
    results = await asyncio.gather(
        *(runtime.intake.register(p) for p in [*good, duplicate]), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], IntegrityError)
    numbers = [r.registry_number for r in results if not isinstance(r, BaseException)]
    assert len(set(numbers)) == 10
    async with runtime.session_factory() as session:
        stored = await session.scalar(select(func.count()).select_from(Clue).where(Clue.id.in_([p.new.id for p in good])))
    assert stored == 10


async def test_validation_happens_before_anything_is_queued(harness: Harness) -> None:
    from service.platform.errors import Invalid

    with pytest.raises(Invalid):
        intake_service.prepare_tip(
            harness.runtime, intake_service.Submission(text="x", channel="carrier-pigeon"), actor="public"
        )
