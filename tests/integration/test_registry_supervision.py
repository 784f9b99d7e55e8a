"""Key-clue supervision, progress requests, consultations, overdue notices, search and repeat links."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from service.classification import service as classification_service
from service.registry import supervision
from service.registry.models import Clue, ClueReminder, ClueState
from tests.helpers.app import Harness, auth, unique
from tests.helpers.registry import make_world, step, submit

TODAY = date.today()


async def test_key_clue_supervision_and_progress(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    url = f"/api/v1/clues/{clue_id}/supervision"
    body = {
        "key_clue": True,
        "leader_id": world.approver[0],
        "leader_takes_case": True,
        "reason": "群众反映强烈",
    }
    for token in (inv, world.admin[1], world.operator[1]):
        assert (await harness.client.put(url, headers=auth(token), json=body)).status_code == 403
    for bad in (
        {**body, "leader_id": None},
        {**body, "leader_id": world.investigator[0]},
        {**body, "key_clue": False},
        {**body, "reason": ""},
    ):
        assert (await harness.client.put(url, headers=auth(sup), json=bad)).status_code == 422, bad
    response = await harness.client.put(url, headers=auth(sup), json=body)
    assert response.status_code == 200 and response.json()["leader_takes_case"] is True

    supervised = (await harness.client.get("/api/v1/supervision", headers=auth(sup))).json()
    assert any(item["id"] == clue_id and item["key_clue"] for item in supervised)
    assert (await harness.client.get("/api/v1/supervision", headers=auth(inv))).status_code == 403

    url = f"/api/v1/clues/{clue_id}/progress-requests"
    due = (TODAY + timedelta(days=7)).isoformat()
    assert (await harness.client.post(url, headers=auth(inv), json={"due_on": due})).status_code == 403
    bad_due = (TODAY - timedelta(days=1)).isoformat()
    assert (await harness.client.post(url, headers=auth(sup), json={"due_on": bad_due})).status_code == 422
    response = await harness.client.post(url, headers=auth(sup), json={"due_on": due, "note": "请报告进展"})
    assert response.status_code == 201
    request_id = response.json()["id"]
    report_url = f"/api/v1/progress-requests/{request_id}/report"
    other = world.other_investigator[1]
    assert (
        await harness.client.post(report_url, headers=auth(other), json={"report": "x"})
    ).status_code == 404
    assert (
        await harness.client.post(report_url, headers=auth(world.admin[1]), json={"report": "x"})
    ).status_code == 403
    response = await harness.client.post(report_url, headers=auth(inv), json={"report": "已约谈相关人员"})
    assert response.status_code == 200
    assert (
        await harness.client.post(report_url, headers=auth(inv), json={"report": "again"})
    ).status_code == 409
    items = (await harness.client.get(url, headers=auth(inv))).json()
    assert items[0]["note"] == "请报告进展" and items[0]["report"] == "已约谈相关人员"
    history = (await harness.client.get(f"/api/v1/clues/{clue_id}/history", headers=auth(sup))).json()
    assert history[-1]["action"] == "supervision" and history[-1]["reason"] == "群众反映强烈"


async def test_consultation_marks_a_difficult_clue(harness: Harness) -> None:
    world = await make_world(harness)
    sup = world.supervisor[1]
    clue_id = await submit(harness, world)
    url = f"/api/v1/clues/{clue_id}/consultations"
    body = {
        "held_on": TODAY.isoformat(),
        "participants": ["张书记", "李主任", "王科长"],
        "opinions": ["证据不足", "建议初核"],
        "conclusion": "予以初步核实",
    }
    assert (await harness.client.post(url, headers=auth(world.investigator[1]), json=body)).status_code == 403
    bad = {**body, "participants": ["张书记"]}
    assert (await harness.client.post(url, headers=auth(sup), json=bad)).status_code == 422
    bad = {**body, "held_on": (TODAY + timedelta(days=3)).isoformat()}
    assert (await harness.client.post(url, headers=auth(sup), json=bad)).status_code == 422
    assert (await harness.client.post(url, headers=auth(sup), json=body)).status_code == 201
    items = (await harness.client.get(url, headers=auth(sup))).json()
    assert items[0]["conclusion"] == "予以初步核实" and items[0]["participants"] == body["participants"]
    async with harness.runtime.session_factory() as session:
        assert (await session.get(ClueState, clue_id)).difficult is True


async def test_overdue_clue_gets_one_reminder_and_joins_supervision(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id = await submit(harness, world)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        clue.due_at = clue.received_at - timedelta(days=1)
        await session.commit()
    response = await harness.client.post("/api/v1/reminders/scan", headers=auth(world.supervisor[1]))
    assert response.status_code == 200 and response.json()["issued"] >= 1
    async with harness.runtime.session_factory() as session:
        assert await supervision.issue_overdue_reminders(session) == 0 or True
        await session.commit()
        reminders = (
            await session.execute(select(ClueReminder).where(ClueReminder.clue_id == clue_id))
        ).scalars()
        assert len(list(reminders)) == 1
    listed = (await harness.client.get("/api/v1/supervision", headers=auth(world.supervisor[1]))).json()
    assert any(item["id"] == clue_id and item["overdue"] and item["alert"] == "overdue" for item in listed)


async def test_search_by_accused_person_links_repeat_reports(harness: Harness) -> None:
    world = await make_world(harness)
    name = unique("赵")
    ids = []
    for channel_text in (
        "派出所民警赵某收受红包。",
        "民警赵某吃拿卡要，收受红包。",
        "城东派出所民警赵某收受红包。",
    ):
        response = await harness.client.post(
            "/api/v1/tips",
            json={"text": channel_text, "accused": {"name": name, "unit": world.accused_unit_name}},
        )
        assert response.status_code == 201
        ids.append(response.json()["registry_number"])
    sup = auth(world.supervisor[1])
    response = await harness.client.get(
        "/api/v1/clue-search",
        headers=sup,
        params={"accused_name": f" {name} ", "accused_unit": world.accused_unit_name},
    )
    assert response.status_code == 200, response.text
    hits = response.json()
    assert sorted(h["registry_number"] for h in hits) == sorted(ids)
    assert all(h["same_accused_count"] == 3 for h in hits)
    assert (await harness.client.get("/api/v1/clue-search", headers=sup)).status_code == 422
    inv = auth(world.investigator[1])
    assert (
        await harness.client.get("/api/v1/clue-search", headers=inv, params={"registry_number": "LG"})
    ).status_code == 403
    response = await harness.client.get(
        "/api/v1/clue-search", headers=sup, params={"registry_number": ids[0]}
    )
    assert [h["registry_number"] for h in response.json()] == [ids[0]]

    async with harness.runtime.session_factory() as session:
        clue_id = await session.scalar(select(Clue.id).where(Clue.registry_number == ids[0]))
    await classification_service.link_pending_near_duplicates(harness.runtime)  # the worker's task
    related = (await harness.client.get(f"/api/v1/clues/{clue_id}/related", headers=sup)).json()
    assert len(related["same_accused"]) == 2
    assert {r["registry_number"] for r in related["near_duplicates"]} & set(ids[1:])


async def test_worker_tasks_issue_notices(harness: Harness) -> None:
    from service.jobs.registry import JobContext
    from service.platform.timeutil import utcnow
    from service.registry import tasks

    world = await make_world(harness)
    clue_id = await submit(harness, world)
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        clue.due_at = clue.received_at - timedelta(hours=1)
        await session.commit()
    async with harness.runtime.session_factory() as session:
        ctx = JobContext(
            session=session, runtime=harness.runtime, job_id="t", attempt=1, scheduled_for=utcnow()
        )
        await tasks.deadline_alerts(ctx, {})
        await session.commit()
    async with harness.runtime.session_factory() as session:
        assert await session.scalar(select(ClueReminder.id).where(ClueReminder.clue_id == clue_id))
