"""Hotline calls and "the caller phones again" through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.intake import assisted as hotline_service
from service.intake.models import Receipt
from service.platform.crypto.envelope import EnvelopeError
from service.platform.errors import Forbidden
from service.registry.additions import ClueAddition
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import assert_absent_from_database, call_body, caller_number
from tests.helpers.registry import clue_fields


async def test_operator_registers_a_call_and_the_number_is_sealed(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    body = call_body()
    response = await harness.client.post("/api/v1/hotline/calls", json=body, headers=auth(operator))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert re.fullmatch(r"\d{5}( \d{5}){4}", answer["receipt"])
    assert answer["receipt_groups"] == answer["receipt"].split(" ")
    clue_id = answer["clue_id"]
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        assert clue.channel == "hotline" and clue.source == "public_report"
        assert clue.identity is not None and clue.real_name is False
        receipt = await session.scalar(select(Receipt).where(Receipt.clue_id == clue_id))
        assert receipt.read_aloud is True
        content = (await clue_fields(harness, clue_id))["content"]
        assert content["details"]["call"]["duration_seconds"] == 540
        assert content["details"]["call"]["callback_allowed"] is True
        assert body["caller_number"] not in json.dumps(content, ensure_ascii=False)
        audit = " ".join(e.details for e in (await session.execute(select(AuditEntry))).scalars())
        assert str(body["caller_number"]) not in audit
    await assert_absent_from_database(harness, str(body["caller_number"]))
    await assert_absent_from_database(harness, answer["receipt"].replace(" ", ""))

    # A supervisor sees the new clue, with the summary and the caller's words, never the number.
    listed = await harness.client.get("/api/v1/clues?channel=hotline&limit=200", headers=auth(supervisor))
    assert clue_id in [c["id"] for c in listed.json()["items"]]
    detail = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(supervisor))
    assert detail.status_code == 200
    assert "通风报信" in detail.json()["text"] and "两万块钱" in detail.json()["text"]
    assert str(body["caller_number"]) not in detail.text


async def test_operators_cannot_read_clues_and_others_cannot_take_calls(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    _, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    made = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    clue_id = made.json()["clue_id"]
    assert (await harness.client.get("/api/v1/clues", headers=auth(operator))).status_code == 403
    assert (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(operator))).status_code in (
        403,
        404,
    )
    for token in (investigator, supervisor):
        refused = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(token))
        assert refused.status_code == 403 and refused.json()["error"]["message"]
    assert (await harness.client.post("/api/v1/hotline/calls", json=call_body())).status_code == 401


async def test_call_validation_errors_name_the_field_and_store_nothing(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    async with harness.runtime.session_factory() as session:
        before = await session.scalar(select(func.count()).select_from(Clue))
    cases = [
        (call_body(summary=""), "summary"),
        ({k: v for k, v in call_body().items() if k != "summary"}, "summary"),
        ({k: v for k, v in call_body().items() if k != "call_started_at"}, "call_started_at"),
        (call_body(duration_seconds=-1), "duration_seconds"),
        (call_body(caller_number="call me maybe"), "caller_number"),
        (call_body(anonymous=False), "body"),  # real name without caller_name
        (call_body(callback_allowed=False, callback_number="13800000000"), "body"),
        (call_body(category_hint="x" * 49), "category_hint"),
        (call_body(unknown_field=1), "unknown_field"),
    ]
    for body, field in cases:
        response = await harness.client.post("/api/v1/hotline/calls", json=body, headers=auth(operator))
        assert response.status_code == 422, (field, response.text)
        error = response.json()["error"]
        assert error["message"] and error["message_en"]
        assert field in [f["field"] for f in error["fields"]], (field, error)
    future = call_body(call_started_at=(datetime.now(UTC) + timedelta(hours=2)).isoformat())
    response = await harness.client.post("/api/v1/hotline/calls", json=future, headers=auth(operator))
    assert response.status_code == 422 and "future" in response.json()["error"]["message_en"]
    naive = call_body(call_started_at="2026-01-01T10:00:00")
    assert (
        await harness.client.post("/api/v1/hotline/calls", json=naive, headers=auth(operator))
    ).status_code == 422
    unknown_hint = call_body(category_hint="no_such_category")
    assert (
        await harness.client.post("/api/v1/hotline/calls", json=unknown_hint, headers=auth(operator))
    ).status_code == 422
    async with harness.runtime.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Clue)) == before


async def test_real_name_call_keeps_the_name_under_the_identity_key(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    name = "钱" + secrets.token_hex(3)
    body = call_body(anonymous=False, caller_name=name, callback_number="010-" + caller_number()[3:])
    response = await harness.client.post("/api/v1/hotline/calls", json=body, headers=auth(operator))
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, response.json()["clue_id"])
        assert clue.real_name is True and clue.identity is not None
    await assert_absent_from_database(harness, name)
    await assert_absent_from_database(harness, str(body["callback_number"]))


async def test_caller_phones_again_and_the_operator_adds_to_the_clue(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])  # before the call: holds its key
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    made = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    clue_id, code = made.json()["clue_id"], made.json()["receipt"]
    async with harness.runtime.session_factory() as session:  # as if the caller had replaced it on the web
        await session.execute(update(Receipt).where(Receipt.clue_id == clue_id).values(read_aloud=False))
        await session.commit()
    addition = {"receipt": code.replace(" ", "-"), "text": "来电人补充：赵某还收过另一家人的钱。"}
    response = await harness.client.post("/api/v1/hotline/additions", json=addition, headers=auth(operator))
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"addition_id", "message", "message_en"}  # nothing about the clue
    async with harness.runtime.session_factory() as session:
        receipt = await session.scalar(select(Receipt).where(Receipt.clue_id == clue_id))
        assert receipt.read_aloud is True
        row = await session.get(ClueAddition, response.json()["addition_id"])
        assert row.clue_id == clue_id and row.kind == "operator_addition"
        assert "另一家人" not in row.content.decode("latin-1")
        actions = (
            await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id))
        ).scalars()
        assert {"clue.addition_added", "receipt.read_aloud"} <= set(actions)
    # Sealed to the clue's own key (compartments): a holder opens it, the staff server's case key does not.
    binding = f"clue_additions/{row.id}/content"
    opened = json.loads(await harness.open_item(supervisor, clue_id, row.content, binding))
    assert opened["text"] == addition["text"]
    with pytest.raises(EnvelopeError):
        harness.runtime.keys.open(row.content, binding)
    wrong = {"receipt": "1" * 25, "text": "x"}
    assert (
        await harness.client.post("/api/v1/hotline/additions", json=wrong, headers=auth(operator))
    ).status_code == 404
    malformed = {"receipt": "12345", "text": "x"}
    assert (
        await harness.client.post("/api/v1/hotline/additions", json=malformed, headers=auth(operator))
    ).status_code == 404
    assert (
        await harness.client.post("/api/v1/hotline/additions", json=addition, headers=auth(supervisor))
    ).status_code == 403


async def test_caller_reads_back_the_record_and_confirms_or_corrects(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])  # before the call: holds its key
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    made = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    clue_id, code = made.json()["clue_id"], made.json()["receipt"].replace(" ", "")
    async with harness.runtime.session_factory() as session:
        record = await hotline_service.operator_record_for_caller(session, clue_id, code=code)
        assert [v.kind for v in record] == ["call_record"]
        assert "通风报信" in record[0].content["summary"]
        await hotline_service.record_caller_confirmation(
            session, clue_id, False, "不是两万，是三万。", runtime=harness.runtime
        )
        await hotline_service.record_caller_confirmation(
            session, clue_id, True, None, runtime=harness.runtime
        )
        await session.commit()
    async with harness.runtime.session_factory() as session:
        record = await hotline_service.operator_record_for_caller(session, clue_id, code=code)
        kinds = [(v.kind, v.content.get("confirmed")) for v in record]
        assert kinds == [("call_record", None), ("caller_confirmation", False), ("caller_confirmation", True)]
        holder = await auth_service.authenticate(session, supervisor)
        staff_view = await hotline_service.list_additions(
            session, clue_id=clue_id, runtime=harness.runtime, actor="test", unlocked=holder.unlocked
        )
        assert staff_view[1].content["correction"] == "不是两万，是三万。"
        with pytest.raises(Forbidden):  # no key unlocked for the request: refused
            await hotline_service.list_additions(
                session, clue_id=clue_id, runtime=harness.runtime, actor="test", unlocked=None
            )
        try:
            await hotline_service.record_caller_confirmation(
                session, clue_id, False, "  ", runtime=harness.runtime
            )
            raise AssertionError("a correction without text was accepted")
        except hotline_service.Invalid as exc:
            assert exc.message_en
