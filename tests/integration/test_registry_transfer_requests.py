"""Transfer requests: the handler asks, a supervisor approves (the transfer step runs, with its rules) or
refuses; reasons sealed, every step audited — on both databases."""

from __future__ import annotations

from sqlalchemy import select

from service.audit.models import AuditEntry
from service.registry.models import Clue, TransferRequest
from tests.helpers.app import Harness, auth
from tests.helpers.registry import make_world, step, submit


async def test_handler_asks_supervisor_approves_or_refuses(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201  # routed to the investigator
    url = f"/api/v1/clues/{clue_id}/transfer-requests"
    body = {"to_unit_id": world.other_unit, "reason": "涉及本单位领导，请求移交督查室"}

    assert (await harness.client.post(url, json=body, headers=auth(world.operator[1]))).status_code == 403
    assert (await harness.client.post(url, json=body, headers=auth(world.other_investigator[1]))).status_code == 404
    assert (await harness.client.post(url, json={**body, "reason": ""}, headers=auth(inv))).status_code == 422
    missing_unit = await harness.client.post(url, json={**body, "to_unit_id": "nope"}, headers=auth(inv))
    assert missing_unit.status_code == 404
    created = await harness.client.post(url, json=body, headers=auth(inv))
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending" and "reason" not in request
    assert (await harness.client.post(url, json=body, headers=auth(inv))).status_code == 409  # one pending at a time

    pending = await harness.client.get("/api/v1/transfer-requests", headers=auth(sup))
    assert request["id"] in [r["id"] for r in pending.json()]
    assert (await harness.client.get("/api/v1/transfer-requests", headers=auth(inv))).status_code == 403

    decision = f"/api/v1/transfer-requests/{request['id']}/decision"
    assert (await harness.client.post(decision, json={"approve": True, "reason": "同意"}, headers=auth(inv))).status_code == 403
    # The transfer step's own rules apply: without a document number it is refused and nothing changes.
    refused_step = await harness.client.post(decision, json={"approve": True, "reason": "同意"}, headers=auth(sup))
    assert refused_step.status_code == 422
    approved = await harness.client.post(
        decision,
        json={"approve": True, "reason": "同意移交", "document_number": "区政法委移〔2026〕9号"},
        headers=auth(sup),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    again = await harness.client.post(decision, json={"approve": False, "reason": "再议"}, headers=auth(sup))
    assert again.status_code == 409

    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        assert clue.status == "transferred"
        row = await session.get(TransferRequest, request["id"])
        assert "涉及本单位领导".encode() not in row.reason  # sealed
        actions = list(
            (await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id))).scalars()
        )
    assert "clue.transfer_requested" in actions and "clue.transfer_request_approved" in actions


async def test_a_refused_request_leaves_the_clue_where_it_was(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    created = await harness.client.post(
        f"/api/v1/clues/{clue_id}/transfer-requests",
        json={"to_unit_id": world.other_unit, "reason": "工作量太大"},
        headers=auth(inv),
    )
    decision = f"/api/v1/transfer-requests/{created.json()['id']}/decision"
    refused = await harness.client.post(decision, json={"approve": False, "reason": "由本单位办理"}, headers=auth(sup))
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    async with harness.runtime.session_factory() as session:
        assert (await session.get(Clue, clue_id)).status == "triaged"
    assert (await harness.client.post(decision, json={"approve": False, "reason": "x"}, headers=auth(sup))).status_code == 409
    missing = "/api/v1/transfer-requests/00000000-0000-0000-0000-000000000000/decision"
    assert (await harness.client.post(missing, json={"approve": False, "reason": "x"}, headers=auth(sup))).status_code == 404
