"""Two-way messages and receipt follow-up: staff API permissions, reporter copies, audit entries, hotline
codes replaced on first web use, uniform wrong-code answers and timing, throttling."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.audit.service import PUBLIC_ACTOR
from service.intake import follow_up
from service.intake import service as intake_service
from service.messages.models import Message
from tests.helpers.app import auth, unique
from tests.helpers.pace import cpu_pace
from tests.helpers.web import open_status

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _tip(harness, *, channel: str = "web") -> tuple[str, str]:
    """A tip through the one pipeline, which makes the reporter key with the receipt."""
    submitted = await harness.runtime.intake.submit(
        intake_service.Submission(text=unique("监狱干警收钱办减刑"), channel=channel),
        actor=PUBLIC_ACTOR if channel == "web" else "staff:test",
    )
    return submitted.clue_id, submitted.receipt


async def test_staff_messages_need_role_and_visibility(harness):
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])  # before the clue: holds its key
    clue_id, code = await _tip(harness)
    _, admin = await harness.add_staff(unique("admin"), ["admin"])
    _, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    client = harness.client
    assert (await client.get(f"/api/v1/clues/{clue_id}/messages")).status_code == 401
    assert (await client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(admin))).status_code == 403
    # An investigator it is not assigned to sees nothing (404, as if it did not exist).
    hidden = await client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(investigator))
    assert hidden.status_code == 404
    empty = await client.post(
        f"/api/v1/clues/{clue_id}/messages", json={"text": " "}, headers=auth(supervisor)
    )
    assert empty.status_code == 422
    sent = await client.post(
        f"/api/v1/clues/{clue_id}/messages", json={"text": "请补充时间"}, headers=auth(supervisor)
    )
    assert sent.status_code == 201
    async with harness.runtime.session_factory() as session:
        message = (await session.execute(select(Message).where(Message.clue_id == clue_id))).scalar_one()
        assert "请补充时间".encode() not in message.body and message.reporter_copy is not None
        actions = (
            await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id))
        ).scalars()
        assert "message.sent" in set(actions)
    listing = await client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(supervisor))
    assert listing.json()[0]["text"] == "请补充时间"
    async with harness.runtime.session_factory() as session:
        actions = list(
            (
                await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id))
            ).scalars()
        )
    assert "message.read" in actions
    # The reporter reads it through the code, without the author.
    status = await client.post("/api/v1/receipt/status", headers={"X-Receipt-Code": code})
    body = status.json()
    assert body["messages"][0]["text"] == "请补充时间" and "author_id" not in body["messages"][0]


async def test_hotline_code_is_replaced_on_first_web_use(harness):
    clue_id, old_code = await _tip(harness, channel="hotline")
    page = await open_status(harness.client, old_code)
    assert page.status_code == 200
    assert "您的新查询码" in page.text
    new_code = "".join(
        part for part in page.text.split('<p class="code"', 1)[1].split("</p>", 1)[0].split("<span>")[1:]
    )
    new_code = "".join(ch for ch in new_code if ch.isdigit())
    assert len(new_code) == 25 and new_code != old_code
    assert (await open_status(harness.client, old_code)).status_code == 404  # the old one stopped working
    again = await open_status(harness.client, new_code)
    assert again.status_code == 200 and "您的新查询码" not in again.text  # shown only on that screen
    async with harness.runtime.session_factory() as session:
        actions = list(
            (
                await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id))
            ).scalars()
        )
    assert "receipt.replaced" in actions


async def test_wrong_codes_same_answer_and_timing(harness):
    throttle = follow_up.FailureThrottle(free_failures=100)
    durations = []
    for text in ("1" * 25, "12345", "", "x" * 90, "１２３４５ ６７８９０ １２３４５ ６７８９０ １２３４５"):
        async with harness.runtime.session_factory() as session:
            started = time.monotonic()
            with pytest.raises(follow_up.WrongCode) as caught:
                await follow_up.open_receipt(
                    session,
                    runtime=harness.runtime,
                    code_text=text,
                    client=unique("c"),
                    throttle=throttle,
                    floor_seconds=0.15,
                )
            durations.append(time.monotonic() - started)
            assert caught.value.message_en.startswith("The receipt code is not correct")
    # The floor holds anywhere; the spread allowed is 80 ms on the reference machine.
    assert min(durations) >= 0.15 and max(durations) - min(durations) < cpu_pace().limit(0.08), durations


async def test_repeated_failures_are_slowed_per_keyed_client(harness):
    throttle = follow_up.FailureThrottle(free_failures=2, base_delay=0.2, max_delay=0.4)
    slow, fresh = unique("attacker"), unique("someone-else")
    for _ in range(3):
        throttle.record_failure(slow)
    assert throttle.delay(slow) == pytest.approx(0.4) and throttle.delay(fresh) == 0.0
    async with harness.runtime.session_factory() as session:
        started = time.monotonic()
        with pytest.raises(follow_up.WrongCode):
            await follow_up.open_receipt(
                session,
                runtime=harness.runtime,
                code_text="2" * 25,
                client=slow,
                throttle=throttle,
                floor_seconds=0.0,
            )
    assert time.monotonic() - started >= 0.4
    # Only keyed digests are held, never the client string.
    assert all(slow.encode() not in key for window in (throttle._current,) for key in window.counts)


async def test_throttle_windows_rotate_and_forget():
    throttle = follow_up.FailureThrottle(window_seconds=0.05, free_failures=1)
    throttle.record_failure("a")
    throttle.record_failure("a")
    assert throttle.failures("a") == 2
    await asyncio.sleep(0.06)
    assert throttle.failures("a") == 2  # previous window still counts
    await asyncio.sleep(0.11)
    assert throttle.failures("a") == 0 and throttle.tracked_clients() == 0


async def test_messages_sent_before_the_first_lookup_are_readable(harness):
    """Every channel's tip gets its reporter key at registration, so a message an investigator sends before
    the reporter first looks (an API or hotline tip) is readable with the code."""
    clue_id, code = await _tip(harness, channel="hotline")
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    client = harness.client
    await client.post(f"/api/v1/clues/{clue_id}/messages", json={"text": "第一条"}, headers=auth(supervisor))
    first = await client.post("/api/v1/receipt/status", json={"receipt": code})
    assert first.status_code == 200, first.text
    assert [m["text"] for m in first.json()["messages"]] == ["第一条"]
