"""The clue lifecycle through the API on both databases: routing at triage, every illegal step refused,
approvals, shelving and reopening, referral with the reporter's status, transfer recusal, role checks."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.registry import lifecycle
from service.registry.lifecycle import TRANSITIONS, allowed_actions
from service.registry.models import Clue, ClueState, ClueTransition
from tests.helpers.app import Harness, auth, unique
from tests.helpers.registry import make_world, step, submit

TODAY = date.today().isoformat()


async def assert_only_allowed(harness: Harness, clue_id: str, token: str) -> None:
    """Every step not open from the current status is refused with 409 and changes nothing."""
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        state = await session.get(ClueState, clue_id)
        status, method = clue.status, state.disposal_method if state else None
        transitions = len(
            (await session.execute(select(ClueTransition).where(ClueTransition.clue_id == clue_id))).all()
        )
    for action in TRANSITIONS:
        if action in allowed_actions(status, method):
            continue
        response = await step(harness, clue_id, token, action)
        assert response.status_code == 409, (status, action, response.text)
        body = response.json()["error"]
        assert body["code"] == "conflict" and body["message"] and body["message_en"]
    async with harness.runtime.session_factory() as session:
        assert (await session.get(Clue, clue_id)).status == status
        after = len(
            (await session.execute(select(ClueTransition).where(ClueTransition.clue_id == clue_id))).all()
        )
        assert after == transitions


async def test_whole_lifecycle_with_routing_approval_and_history(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    await assert_only_allowed(harness, clue_id, sup)

    # The investigator cannot triage (a supervisor's decision) and cannot see the clue yet.
    assert (await step(harness, clue_id, inv, "triage")).status_code == 404
    assert (await step(harness, clue_id, world.operator[1], "triage")).status_code == 404
    response = await step(harness, clue_id, sup, "triage")
    assert response.status_code == 201, response.text
    assert response.json()["details"]["routing_rule_id"]
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        state = await session.get(ClueState, clue_id)
        assert clue.status == "triaged" and clue.assignee_id == world.investigator[0]
        assert clue.handling_unit_id == world.handling_unit and state.routing_rule_id
    await assert_only_allowed(harness, clue_id, sup)

    assert (await step(harness, clue_id, inv, "triage")).status_code == 403  # a decision, not his
    assert (await step(harness, clue_id, inv, "refer", target="12388")).status_code == 403
    assert (await step(harness, clue_id, inv, "accept")).status_code == 201
    await assert_only_allowed(harness, clue_id, sup)

    # Disposal needs a recorded collective decision and an approver who is another supervisor.
    bad = [
        {"method": "verification"},
        {"method": "verification", "approver_id": world.approver[0]},
        {"method": "verification", "approver_id": world.investigator[0], "decision_on": TODAY},
        {"method": "nonsense", "approver_id": world.approver[0], "decision_on": TODAY},
        {"method": "verification", "approver_id": world.approver[0], "decision_on": "2999-01-01"},
    ]
    for fields in bad:
        response = await step(harness, clue_id, inv, "dispose", **fields)
        assert response.status_code == 422, (fields, response.text)
    response = await step(
        harness,
        clue_id,
        sup,
        "dispose",
        method="verification",
        approver_id=world.supervisor[0],
        decision_on=TODAY,
    )
    assert response.status_code == 422  # the approver cannot be the recorder
    response = await step(
        harness,
        clue_id,
        inv,
        "dispose",
        method="verification",
        approver_id=world.approver[0],
        decision_on=TODAY,
    )
    assert response.status_code == 201, response.text
    await assert_only_allowed(harness, clue_id, sup)

    # Conclude: 不属实 with a clearing record and a knowingly-false note; other findings refuse them.
    base = {
        "approver_id": world.approver[0],
        "decision_on": TODAY,
        "summary": "经核查，反映问题不属实。",
        "feedback": "已办结。",
    }
    response = await step(
        harness, clue_id, inv, "conclude", finding="substantiated", clearing_record="澄清", **base
    )
    assert response.status_code == 422
    response = await step(harness, clue_id, inv, "conclude", finding="unfounded", **{**base, "summary": " "})
    assert response.status_code == 422
    response = await step(
        harness,
        clue_id,
        inv,
        "conclude",
        finding="unfounded",
        clearing_record="在全局会议上为该民警澄清正名。",
        false_report_note="举报内容与事实明显不符，疑似诬告。",
        **base,
    )
    assert response.status_code == 201, response.text
    await assert_only_allowed(harness, clue_id, sup)
    assert (await step(harness, clue_id, inv, "archive")).status_code == 403
    assert (await step(harness, clue_id, sup, "archive")).status_code == 201
    await assert_only_allowed(harness, clue_id, sup)

    response = await harness.client.get(f"/api/v1/clues/{clue_id}/history", headers=auth(sup))
    assert response.status_code == 200
    history = response.json()
    assert [h["action"] for h in history] == ["triage", "accept", "dispose", "conclude", "archive"]
    assert [h["to_status"] for h in history][-1] == "archived"
    assert history[2]["approver_id"] == world.approver[0] and history[2]["reason"] == "理由：dispose"
    assert (
        history[3]["clearing_record"].startswith("在全局会议")
        and history[3]["details"]["finding"] == "unfounded"
    )
    async with harness.runtime.session_factory() as session:
        state = await session.get(ClueState, clue_id)
        assert state.finding == "unfounded" and state.cleared and state.concluded_at and state.feedback_at
        rows = (
            await session.execute(select(ClueTransition).where(ClueTransition.clue_id == clue_id))
        ).scalars()
        for row in rows:
            assert (
                "理由" not in row.details and b"\xe7\x90\x86\xe7\x94\xb1" not in row.sealed
            )  # sealed, not plain
        entries = (
            await session.execute(
                select(AuditEntry).where(AuditEntry.object_id == clue_id).order_by(AuditEntry.seq)
            )
        ).scalars()
        actions = [e.action for e in entries]
        for name in (
            "clue.triage",
            "clue.accept",
            "clue.dispose",
            "clue.conclude",
            "clue.archive",
            "clue.history_read",
        ):
            assert name in actions
        details = " ".join(
            e.details
            for e in (
                await session.execute(select(AuditEntry).where(AuditEntry.object_id == clue_id))
            ).scalars()
        )
        assert "诬告" not in details and "澄清" not in details and "理由" not in details


async def test_shelve_and_reopen_and_send_on(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    for action in ("triage", "accept"):
        assert (await step(harness, clue_id, sup, action)).status_code == 201
    approval = {"approver_id": world.approver[0], "decision_on": TODAY}
    assert (await step(harness, clue_id, inv, "dispose", method="shelve", **approval)).status_code == 201
    await assert_only_allowed(harness, clue_id, sup)  # a shelved clue cannot be concluded, only reopened
    assert (await step(harness, clue_id, inv, "reopen")).status_code == 403
    assert (await step(harness, clue_id, sup, "reopen")).status_code == 201
    response = await step(harness, clue_id, inv, "send_on", kind="organ", target="区检察院", **approval)
    assert response.status_code == 422  # document number missing
    response = await step(
        harness,
        clue_id,
        inv,
        "send_on",
        kind="investigation",
        target="区纪委监委审查调查室",
        document_number="区政法委〔2026〕12号",
        expected_feedback_on="2026-12-31",
        **approval,
    )
    assert response.status_code == 201, response.text
    await assert_only_allowed(harness, clue_id, sup)
    async with harness.runtime.session_factory() as session:
        entries = (
            await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id))
        ).scalars()
        assert "clue.reopen" in list(entries)


async def test_out_of_scope_referral_tells_the_reporter_where_to_go(harness: Harness) -> None:
    world = await make_world(harness)
    sup = world.supervisor[1]
    clue_id = await submit(harness, world)
    response = await step(harness, clue_id, sup, "refer", target="nowhere")
    assert response.status_code == 422
    response = await step(harness, clue_id, sup, "refer", target="12345")
    assert response.status_code == 201 and response.json()["details"]["late"] is False
    await assert_only_allowed(harness, clue_id, sup)
    async with harness.runtime.session_factory() as session:
        status = await lifecycle.public_status_for(session, clue_id)
    assert status["status"] == "referred" and "12345" in status["text"]
    assert status["referred_to"]["code"] == "12345" and status["referred_to"]["on"]
    assert (await step(harness, clue_id, sup, "archive")).status_code == 201


async def test_public_status_never_says_more_than_plain_words(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id = await submit(harness, world, anonymous=False)
    async with harness.runtime.session_factory() as session:
        status = await lifecycle.public_status_for(session, clue_id)
    assert status == {
        "status": "registered",
        "text": "您的举报已登记，正在分办。",
        "text_en": status["text_en"],
        "referred_to": None,
    }


async def test_transfer_keeps_history_and_respects_recusal(harness: Harness) -> None:
    world = await make_world(harness)
    sup = world.supervisor[1]
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage", route=False)).status_code == 201
    response = await step(
        harness, clue_id, sup, "transfer", to_unit_id=world.accused_unit, document_number="X1"
    )
    assert response.status_code == 409 and "回避" in response.json()["error"]["message"]
    assert (await step(harness, clue_id, sup, "transfer", to_unit_id=world.handling_unit)).status_code == 422
    response = await step(
        harness,
        clue_id,
        sup,
        "transfer",
        to_unit_id=world.handling_unit,
        document_number="区政法委移〔2026〕3号",
    )
    assert response.status_code == 201, response.text
    assert response.json()["details"]["to_unit_id"] == world.handling_unit
    await assert_only_allowed(harness, clue_id, sup)
    # Reassignment with a reason; recusal refuses staff of the accused unit.
    accused_staff, _ = await harness.add_staff(unique("inv-acc"), ["investigator"], world.accused_unit)
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/reassign",
        headers=auth(sup),
        json={"assignee_id": accused_staff, "reason": "调整"},
    )
    assert response.status_code == 409
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/reassign",
        headers=auth(sup),
        json={"assignee_id": world.investigator[0], "reason": " "},
    )
    assert response.status_code == 422
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/reassign",
        headers=auth(world.investigator[1]),
        json={"assignee_id": world.investigator[0], "reason": "调整"},
    )
    assert response.status_code == 403
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/reassign",
        headers=auth(sup),
        json={"assignee_id": world.investigator[0], "reason": "工作调整"},
    )
    assert response.status_code == 200, response.text
    assert (await step(harness, clue_id, world.investigator[1], "accept")).status_code == 201
    transfers = (await harness.client.get(f"/api/v1/clues/{clue_id}/transfers", headers=auth(sup))).json()
    assert [(t["kind"], t["to_unit_id"], t["document_number"]) for t in transfers] == [
        ("unit", world.handling_unit, "区政法委移〔2026〕3号")
    ]
    assert transfers[0]["expected_feedback_at"] and transfers[0]["feedback_at"] is None
    feedback_url = f"/api/v1/clues/{clue_id}/transfers/{transfers[0]['id']}/feedback"
    assert (await harness.client.post(feedback_url, headers=auth(world.investigator[1]))).status_code == 403
    assert (await harness.client.post(feedback_url, headers=auth(sup))).status_code == 200
    assert (await harness.client.post(feedback_url, headers=auth(sup))).status_code == 409
    history = (await harness.client.get(f"/api/v1/clues/{clue_id}/history", headers=auth(sup))).json()
    assert [h["action"] for h in history] == ["triage", "transfer", "reassign", "accept"]
    assert history[2]["reason"] == "工作调整"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/clues/{id}/transitions", {"action": "triage", "reason": "x"}),
        ("get", "/api/v1/clues/{id}/history", None),
        ("get", "/api/v1/clues/{id}/actions", None),
        ("post", "/api/v1/clues/{id}/reassign", {"assignee_id": "x", "reason": "x"}),
    ],
)
async def test_clue_endpoints_refuse_roles_without_the_right(
    harness: Harness, method: str, path: str, body: object
) -> None:
    world = await make_world(harness)
    clue_id = await submit(harness, world)
    url = path.format(id=clue_id)
    for token in (world.operator[1], world.admin[1], world.other_investigator[1]):
        response = await harness.client.request(method, url, headers=auth(token), json=body)
        assert response.status_code in (403, 404), (token, response.text)
    response = await harness.client.request(method, url, json=body)
    assert response.status_code == 401


async def test_rule_endpoints_are_for_admins(harness: Harness) -> None:
    world = await make_world(harness)
    rule = {"handling_unit_id": world.handling_unit}
    deadline = {"stage": "verification", "category": "vice", "working_days": 10}
    for token in (world.supervisor[1], world.investigator[1], world.operator[1]):
        assert (
            await harness.client.post("/api/v1/routing-rules", headers=auth(token), json=rule)
        ).status_code == 403
        assert (
            await harness.client.post("/api/v1/deadline-rules", headers=auth(token), json=deadline)
        ).status_code == 403
    for token in (world.investigator[1], world.operator[1]):
        assert (await harness.client.get("/api/v1/routing-rules", headers=auth(token))).status_code == 403
    assert (
        await harness.client.get("/api/v1/routing-rules", headers=auth(world.supervisor[1]))
    ).status_code == 200
    adm = auth(world.admin[1])
    for bad in (
        {"handling_unit_id": "nope"},
        {"handling_unit_id": world.handling_unit, "category": "nope"},
        {"handling_unit_id": world.handling_unit, "default_assignee_id": world.other_investigator[0]},
    ):
        assert (await harness.client.post("/api/v1/routing-rules", headers=adm, json=bad)).status_code == 422
    for bad in (
        {"stage": "x", "working_days": 3},
        {"stage": "verification"},
        {"stage": "verification", "working_days": 3, "months": 1},
        {"stage": "verification", "working_days": 0},
    ):
        assert (await harness.client.post("/api/v1/deadline-rules", headers=adm, json=bad)).status_code == 422
    response = await harness.client.post("/api/v1/deadline-rules", headers=adm, json=deadline)
    assert response.status_code == 201
    rule_id = response.json()["id"]
    assert any(
        r["id"] == rule_id for r in (await harness.client.get("/api/v1/deadline-rules", headers=adm)).json()
    )
    assert (await harness.client.delete(f"/api/v1/deadline-rules/{rule_id}", headers=adm)).status_code == 204
    assert (await harness.client.delete(f"/api/v1/deadline-rules/{rule_id}", headers=adm)).status_code == 404
    json.dumps(rule)


async def test_notes_are_sealed_history_entries(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, world.supervisor[1], "triage")).status_code == 201
    url = f"/api/v1/clues/{clue_id}/notes"
    inv = auth(world.investigator[1])
    assert (await harness.client.post(url, headers=inv, json={"text": " "})).status_code == 422
    other = auth(world.other_investigator[1])
    assert (await harness.client.post(url, headers=other, json={"text": "x"})).status_code == 404
    response = await harness.client.post(url, headers=inv, json={"text": "已调取接处警记录。"})
    assert response.status_code == 201 and response.json()["action"] == "note"
    history = (await harness.client.get(f"/api/v1/clues/{clue_id}/history", headers=inv)).json()
    assert history[-1]["reason"] == "已调取接处警记录。"
    async with harness.runtime.session_factory() as session:
        row = await session.get(ClueTransition, response.json()["id"])
        assert "接处警" not in row.details and row.sealed
