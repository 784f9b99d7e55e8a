"""Recusal on the staff site's clue page, on both databases: a supervisor records one with a reason through a
plain form (the service the API calls: the person's wraps go, the audit says so), the page lists who was
recused, when and by whom, with the reason for those who hold the clue's key; bad input shows the page again
with a clear message and records nothing; other roles get no form and are refused."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.compartments import service as compartments
from service.platform.errors import Forbidden
from service.registry import service as registry_service
from service.registry.models import ClueRecusal
from tests.helpers.app import Harness, auth
from tests.helpers.registry import make_world, submit
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff

WHY = "其配偶系被反映人的同事，需回避"


async def _recusals(harness: Harness, clue_id: str) -> int:
    async with harness.runtime.session_factory() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(ClueRecusal).where(ClueRecusal.clue_id == clue_id)
            )
            or 0
        )


async def _opens(harness: Harness, token: str, clue_id: str) -> bool:
    async with harness.runtime.session_factory() as session:
        principal = await auth_service.authenticate(session, token)
        await session.commit()  # what the request sealed (a waiting grant) stays, as after a real request
        try:
            await session.run_sync(
                lambda s: compartments.open_clue(s, clue_id=clue_id, unlocked=principal.unlocked)
            )
        except Forbidden:
            return False
    return True


async def test_a_supervisor_records_a_recusal_with_a_reason_on_the_clue_page(harness: Harness) -> None:
    world = await make_world(harness)
    supervisor = await make_web_staff(harness, ["supervisor"])  # there when the clue's key is wrapped
    member_id, member = world.approver  # another supervisor: wrapped at registration
    clue_id = await submit(harness, world)
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign",
        headers=auth(world.supervisor[1]),
        json={"assignee_id": world.investigator[0]},
    )
    assert assigned.status_code == 200, assigned.text
    assert await _opens(harness, member, clue_id)
    url = f"/staff/registry/clues/{clue_id}"
    async with log_in(harness, supervisor) as client:
        page = await client.get(url)
        assert page.status_code == 200 and "记录回避" in page.text and "尚无回避记录。" in page.text
        token = csrf_of(page.text)

        # Bad input: the page again with the message, the form's values kept, nothing recorded.
        for data, status, text in (
            ({"staff_id": member_id, "reason": "  "}, 422, "请填写回避理由"),
            ({"staff_id": "no-such-person", "reason": WHY}, 404, "账号不存在"),
            ({"staff_id": "", "reason": WHY}, 404, "账号不存在"),
            ({"staff_id": world.investigator[0], "reason": WHY}, 409, "请先改派"),
        ):
            response = await client.post(f"{url}/recusals", data={"csrf_token": token, **data})
            assert response.status_code == status and text in response.text, (data, response.status_code)
            assert 'id="f-recusal-reason"' in response.text
        kept = await client.post(
            f"{url}/recusals", data={"csrf_token": token, "staff_id": member_id, "reason": ""}
        )
        assert f'<option value="{member_id}" selected>' in kept.text
        forged = await client.post(f"{url}/recusals", data={"staff_id": member_id, "reason": WHY})
        assert forged.status_code == 403  # no CSRF token
        assert await _recusals(harness, clue_id) == 0 and await _opens(harness, member, clue_id)

        done = await client.post(
            f"{url}/recusals", data={"csrf_token": token, "staff_id": member_id, "reason": WHY}
        )
        assert done.status_code == 303 and done.headers["location"].endswith("#recusals"), done.text
        page = await client.get(done.headers["location"])
        listed = page.text.split('id="recusals"', 1)[1].split("</ul>", 1)[0]
        member_name = await _name(harness, member_id)
        supervisor_name = await _name(harness, supervisor.id)
        assert member_name in listed and supervisor_name in listed and WHY in listed
        again = await client.post(
            f"{url}/recusals", data={"csrf_token": token, "staff_id": member_id, "reason": WHY}
        )
        assert again.status_code == 409 and "已对该线索回避" in again.text

        await client.get("/staff/lang?to=en&next=%2Fstaff")
        english = await client.get(url)
        assert "Record a recusal" in english.text and "Reason for recusal" in english.text
        assert "记录回避" not in english.text

    assert await _recusals(harness, clue_id) == 1
    assert not await _opens(harness, member, clue_id)  # the same effect as the API's recusal
    async with harness.runtime.session_factory() as session:
        details = await session.scalar(
            select(AuditEntry.details).where(
                AuditEntry.object_id == clue_id, AuditEntry.action == "clue.recusal_recorded"
            )
        )
    assert details is not None and json.loads(details)["staff_id"] == member_id
    assert WHY not in details  # the reason is sealed, never in the audit


async def _name(harness: Harness, staff_id: str) -> str:
    async with harness.runtime.session_factory() as session:
        return (await auth_service.get_staff(session, staff_id)).name


async def test_the_reason_is_shown_only_to_those_who_hold_the_clue(harness: Harness) -> None:
    world = await make_world(harness)
    supervisor_id, supervisor = world.supervisor
    colleague_id, colleague = world.approver
    clue_id = await submit(harness, world)
    for person, why in ((world.other_investigator[0], WHY), (colleague_id, "本人提出回避")):
        response = await harness.client.post(
            f"/api/v1/clues/{clue_id}/recusals",
            headers=auth(supervisor),
            json={"staff_id": person, "reason": why},
        )
        assert response.status_code == 201, response.text

    async def listed(token: str) -> list[registry_service.RecusalView]:
        async with harness.runtime.session_factory() as session:
            principal = await auth_service.authenticate(session, token)
            return await registry_service.list_recusals(
                session, clue_id=clue_id, principal=principal, keys=harness.runtime.keys
            )

    holder = await listed(supervisor)
    assert [(r.staff_id, r.reason, r.reason_withheld) for r in holder] == [
        (world.other_investigator[0], WHY, False),
        (colleague_id, "本人提出回避", False),
    ]
    assert all(r.recorded_by == f"staff:{supervisor_id}" for r in holder)
    # The recused supervisor still sees who was recused and when, not why: they no longer hold the key.
    withheld = await listed(colleague)
    assert [(r.staff_id, r.reason, r.reason_withheld) for r in withheld] == [
        (world.other_investigator[0], None, True),
        (colleague_id, None, True),
    ]


async def test_an_investigator_sees_the_recusals_but_no_form(harness: Harness) -> None:
    world = await make_world(harness)
    investigator = await make_web_staff(harness, ["investigator"], world.handling_unit)
    clue_id = await submit(harness, world)
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign",
        headers=auth(world.supervisor[1]),
        json={"assignee_id": investigator.id},
    )
    assert assigned.status_code == 200, assigned.text
    recused = await harness.client.post(
        f"/api/v1/clues/{clue_id}/recusals",
        headers=auth(world.supervisor[1]),
        json={"staff_id": world.other_investigator[0], "reason": WHY},
    )
    assert recused.status_code == 201, recused.text
    async with log_in(harness, investigator) as client:
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert page.status_code == 200 and WHY in page.text and 'action="/staff/registry/clues/' in page.text
        assert f"/clues/{clue_id}/recusals" not in page.text
        refused = await client.post(
            f"/staff/registry/clues/{clue_id}/recusals",
            data={"csrf_token": csrf_of(page.text), "staff_id": world.approver[0], "reason": WHY},
        )
        assert refused.status_code == 403
    assert await _recusals(harness, clue_id) == 1
