"""The 15-working-day acceptance notice for real-name reporters: watched by the deadline scan (催办单 with
stage ``acceptance_notice``), shown in the supervision list, recorded explicitly or by a referral."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from service.audit.models import AuditEntry
from service.platform.timeutil import LOCAL, utcnow
from service.registry import deadlines, lifecycle, supervision
from service.registry.models import Clue, ClueReminder, ClueState
from tests.helpers.app import Harness, auth
from tests.helpers.registry import make_world, step, submit
from tests.helpers.staff_web import log_in, make_web_staff


async def _age(harness: Harness, clue_id: str, days: int) -> None:
    """Move the clue's receipt back; its own (disposal) deadline stays in the future."""
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        clue.received_at = utcnow() - timedelta(days=days)
        clue.due_at = utcnow() + timedelta(days=30)
        await session.commit()


def test_acceptance_limit_is_15_working_days_across_the_spring_festival() -> None:
    # Received Friday 2026-02-13; the 2026 Spring Festival holiday runs 15-23 February, with make-up
    # workdays on Saturday 14 and Saturday 28 February.
    received = datetime(2026, 2, 13, 10, 0, tzinfo=LOCAL)
    due = deadlines.DEFAULT_LIMITS[deadlines.Stage.acceptance_notice].due(received)
    assert deadlines.working_days_between(received.date(), due.astimezone(LOCAL).date()) == 15
    assert due.astimezone(LOCAL).date() > received.date() + timedelta(days=21)
    assert deadlines.alert_level(received, due, received + timedelta(days=1)) == deadlines.AlertLevel.ok


async def test_overdue_acceptance_notice_gets_a_reminder_and_joins_supervision(harness: Harness) -> None:
    world = await make_world(harness)
    sup = world.supervisor[1]
    named = await submit(harness, world, anonymous=False)
    anonymous = await submit(harness, world)
    fresh = await submit(harness, world, anonymous=False)
    await _age(harness, named, 40)
    await _age(harness, anonymous, 40)
    async with harness.runtime.session_factory() as session:
        assert (await session.get(Clue, named)).real_name
        await supervision.issue_overdue_reminders(session)
        await supervision.issue_overdue_reminders(session)  # idempotent
        await session.commit()
        rows = (
            await session.execute(
                select(ClueReminder).where(ClueReminder.clue_id.in_([named, anonymous, fresh]))
            )
        ).scalars()
        reminders = list(rows)
    assert [(r.clue_id, r.stage) for r in reminders] == [(named, "acceptance_notice")]
    listed = (await harness.client.get("/api/v1/supervision", headers=auth(sup))).json()
    item = next(i for i in listed if i["id"] == named)
    assert item["acceptance_notice"]["alert"] == "overdue" and item["acceptance_notice"]["given_at"] is None
    assert item["alert"] != "overdue"  # the clue's own deadline is not the one that is late
    supervisor_web = await make_web_staff(harness, ["supervisor"])
    async with log_in(harness, supervisor_web) as client:
        page = await client.get("/staff/registry/supervision")
        assert page.status_code == 200 and "受理告知（实名）" in page.text
        row = next(r for r in page.text.split("<tr>") if named in r)
        assert "已超期" in row

    # The handler's colleague in another unit cannot see it; an anonymous report has no notice.
    other = world.other_investigator[1]
    response = await harness.client.post(f"/api/v1/clues/{named}/acceptance-notice", headers=auth(other))
    assert response.status_code == 404
    response = await harness.client.post(f"/api/v1/clues/{anonymous}/acceptance-notice", headers=auth(sup))
    assert response.status_code == 409 and response.json()["error"]["message_en"]
    response = await harness.client.post(f"/api/v1/clues/{named}/acceptance-notice", headers=auth(sup))
    assert response.status_code == 201, response.text
    assert response.json()["late"] is True
    again = await harness.client.post(f"/api/v1/clues/{named}/acceptance-notice", headers=auth(sup))
    assert again.status_code == 409
    async with harness.runtime.session_factory() as session:
        state = await session.get(ClueState, named)
        assert state.acceptance_notice_at is not None
        audited = (
            await session.execute(
                select(AuditEntry).where(
                    AuditEntry.object_id == named, AuditEntry.action == "clue.acceptance_notice"
                )
            )
        ).scalars()
        entries = list(audited)
        assert len(entries) == 1 and json.loads(entries[0].details) == {"late": True}
    listed = (await harness.client.get("/api/v1/supervision", headers=auth(sup))).json()
    item = next(i for i in listed if i["id"] == named)
    assert item["acceptance_notice"]["alert"] == "done"


async def test_alert_levels_before_the_acceptance_limit(harness: Harness) -> None:
    world = await make_world(harness)
    named = await submit(harness, world, anonymous=False)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, named)
        rules = await lifecycle.load_rules(session)
        due = supervision.acceptance_due(rules, clue)
    received = clue.received_at
    assert deadlines.alert_level(received, due, received) == deadlines.AlertLevel.ok
    levels = {deadlines.alert_level(received, due, received + timedelta(days=d)) for d in range(0, 40)}
    assert {deadlines.AlertLevel.half, deadlines.AlertLevel.warning, deadlines.AlertLevel.overdue} <= levels
    # Not yet due: the scan issues nothing for it.
    async with harness.runtime.session_factory() as session:
        await supervision.issue_overdue_reminders(session)
        await session.commit()
        assert not await session.scalar(select(ClueReminder.id).where(ClueReminder.clue_id == named))


async def test_the_handler_records_the_notice_in_time(harness: Harness) -> None:
    world = await make_world(harness)
    named = await submit(harness, world, anonymous=False)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, named)
        clue.assignee_id, clue.handling_unit_id = world.investigator[0], world.handling_unit
        await session.commit()
    response = await harness.client.post(
        f"/api/v1/clues/{named}/acceptance-notice", headers=auth(world.investigator[1])
    )
    assert response.status_code == 201, response.text
    assert response.json()["late"] is False
    await _age(harness, named, 40)
    async with harness.runtime.session_factory() as session:
        await supervision.issue_overdue_reminders(session)  # told in time: no acceptance notice reminder
        await session.commit()
        assert not await session.scalar(select(ClueReminder.id).where(ClueReminder.clue_id == named))


async def test_a_referral_is_the_acceptance_notice(harness: Harness) -> None:
    world = await make_world(harness)
    named = await submit(harness, world, anonymous=False)
    response = await step(harness, named, world.supervisor[1], "refer", target="12345")
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        assert (await session.get(ClueState, named)).acceptance_notice_at is not None
