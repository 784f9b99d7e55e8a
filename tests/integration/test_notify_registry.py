"""Registry events reach staff through the outbox, content-free: the assignee hears of an assignment, and
the handler and the supervisors hear of a clue past its deadline — a link each, delivered by the worker
through a real (throwaway aiosmtpd) relay, never a number, category, name or report text."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from service.jobs.registry import JobContext
from service.jobs.worker import Worker
from service.notify.models import STAFF, OutboxMessage
from service.platform.timeutil import utcnow
from service.registry import tasks as registry_tasks
from service.registry.models import Clue
from tests.helpers import free_port
from tests.helpers.app import auth, running_app
from tests.helpers.mail import body_of, relay_on
from tests.helpers.registry import make_world, submit


async def staff_notices(runtime, staff_id: str) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == STAFF, OutboxMessage.staff_id == staff_id)
        )
        return list(rows.all())


async def test_assignment_and_deadline_notices_are_content_free(tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    async with running_app(
        tmp_path,
        fresh_database_url,
        relay_host="127.0.0.1",
        relay_port=port,
        relay_starttls=False,
        mail_acknowledge=False,
    ) as h:
        world = await make_world(h)
        investigator_id, investigator = world.other_investigator
        supervisor_id, supervisor = world.supervisor
        for token, address in ((investigator, "inv@staff.example"), (supervisor, "sup@staff.example")):
            put = await h.client.put(
                "/api/v1/me/notifications",
                json={"address": address, "mode": "immediate"},
                headers=auth(token),
            )
            assert put.status_code == 200, put.text
        clue_id = await submit(h, world)
        async with h.runtime.session_factory() as session:
            clue = await session.get(Clue, clue_id)
            assert clue is not None
            registry_number, previous = clue.registry_number, clue.assignee_id
        assert previous != investigator_id

        # Assignment: the assignee (and nobody else) is told, with a link.
        assigned = await h.client.post(
            f"/api/v1/clues/{clue_id}/assign",
            json={"assignee_id": investigator_id},
            headers=auth(supervisor),
        )
        assert assigned.status_code == 200, assigned.text
        notices = await staff_notices(h.runtime, investigator_id)
        assert [(n.event, n.path) for n in notices] == [("clue_assigned", f"/staff/registry/clues/{clue_id}")]
        assert not [n for n in await staff_notices(h.runtime, supervisor_id) if n.event == "clue_assigned"]
        # Assigning to the same person again is no news.
        again = await h.client.post(
            f"/api/v1/clues/{clue_id}/assign",
            json={"assignee_id": investigator_id},
            headers=auth(supervisor),
        )
        assert again.status_code == 200 and len(await staff_notices(h.runtime, investigator_id)) == 1

        # Deadline passed: the registry's periodic alert tells the handler and the supervisors.
        async with h.runtime.session_factory() as session:
            clue = await session.get(Clue, clue_id)
            clue.due_at = clue.received_at - timedelta(hours=1)  # type: ignore[union-attr]
            await session.commit()
        async with h.runtime.session_factory() as session:
            ctx = JobContext(
                session=session, runtime=h.runtime, job_id="t", attempt=1, scheduled_for=utcnow()
            )
            await registry_tasks.deadline_alerts(ctx, {})
            await session.commit()
        handler = [n for n in await staff_notices(h.runtime, investigator_id) if n.event == "deadline_near"]
        assert [n.path for n in handler] == [f"/staff/registry/clues/{clue_id}"]
        assert [n.event for n in await staff_notices(h.runtime, supervisor_id)].count("deadline_near") == 1

        with relay_on(port) as relay:
            await Worker(h.runtime).run_once()
        delivered = {tuple(rcpts): raw for rcpts, raw in relay.messages}
        assert len(relay.messages) == 3
        assert sorted(delivered) == [("inv@staff.example",), ("sup@staff.example",)]
        for _, raw in relay.messages:
            text = body_of(raw)
            assert "/staff" in text
            assert registry_number not in text and "红包" not in text and "民警" not in text
            assert world.accused_unit_name not in text
