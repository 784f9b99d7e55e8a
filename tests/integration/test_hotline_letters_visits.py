"""Letters and visits through the API (both databases)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from service.platform.timeutil import LOCAL
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import assert_absent_from_database
from tests.helpers.registry import clue_fields


def today():  # type: ignore[no-untyped-def]
    return datetime.now(LOCAL).date()


async def test_letter_with_postmark_and_sealed_writer(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    address = "某省某市解放路" + secrets.token_hex(3) + "号"
    body = {
        "postmark_date": (today() - timedelta(days=4)).isoformat(),
        "received_date": (today() - timedelta(days=1)).isoformat(),
        "page_count": 3,
        "text": "来信反映：区法院执行局法官的儿子在本院辖区当律师，专接执行案件。",
        "anonymous": False,
        "writer": {"name": "吴某某", "address": address, "phone": "0755-12345678"},
        "accused": {"unit": "某某区法院执行局", "position": "法官"},
    }
    response = await harness.client.post("/api/v1/letters", json=body, headers=auth(operator))
    assert response.status_code == 201, response.text
    assert len(response.json()["receipt"].replace(" ", "")) == 25
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, response.json()["clue_id"])
        assert clue.channel == "letter" and clue.source == "public_report" and clue.real_name is True
        assert clue.identity is not None
        assert clue.received_at.astimezone(LOCAL).date() == today() - timedelta(days=1)
        content = (await clue_fields(harness, clue.id))["content"]
        assert content["details"]["letter"]["postmark_date"] == body["postmark_date"]
        assert content["details"]["letter"]["page_count"] == 3
    await assert_absent_from_database(harness, address)


async def test_visit_with_receiver_and_sealed_visitor(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    id_number = "44030419900101" + "".join(secrets.choice("0123456789") for _ in range(4))
    body = {
        "visit_date": today().isoformat(),
        "received_by": "接待室张某、李某",
        "text": "来访人反映：派出所报案不受理，不给回执。",
        "visitor": {"id_number": id_number},
    }
    response = await harness.client.post("/api/v1/visits", json=body, headers=auth(operator))
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, response.json()["clue_id"])
        assert clue.channel == "visit" and clue.identity is not None and clue.real_name is False
        content = (await clue_fields(harness, clue.id))["content"]
        assert content["details"]["visit"]["received_by"] == "接待室张某、李某"
    await assert_absent_from_database(harness, id_number)


async def test_letter_and_visit_required_fields(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    letter_cases = [
        ({"text": "x"}, "postmark_date"),
        ({"postmark_date": today().isoformat()}, "text"),
        ({"postmark_date": "2026-02-30", "text": "x"}, "postmark_date"),
        ({"postmark_date": today().isoformat(), "text": "x", "anonymous": False}, "body"),
        ({"postmark_date": today().isoformat(), "text": "x", "writer": {"phone": "abc"}}, "writer.phone"),
    ]
    for body, field in letter_cases:
        response = await harness.client.post("/api/v1/letters", json=body, headers=auth(operator))
        assert response.status_code == 422, (field, response.text)
        assert field in [f["field"] for f in response.json()["error"]["fields"]], field
    later = {"postmark_date": (today() + timedelta(days=2)).isoformat(), "text": "x"}
    assert (
        await harness.client.post("/api/v1/letters", json=later, headers=auth(operator))
    ).status_code == 422
    visit_cases = [
        ({"received_by": "某", "text": "x"}, "visit_date"),
        ({"visit_date": today().isoformat(), "text": "x"}, "received_by"),
        ({"visit_date": today().isoformat(), "received_by": "某"}, "text"),
    ]
    for body, field in visit_cases:
        response = await harness.client.post("/api/v1/visits", json=body, headers=auth(operator))
        assert response.status_code == 422, (field, response.text)
        assert field in [f["field"] for f in response.json()["error"]["fields"]], field


async def test_only_operators_register_letters_and_visits(harness: Harness) -> None:
    _, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    body = {"postmark_date": today().isoformat(), "text": "x"}
    assert (
        await harness.client.post("/api/v1/letters", json=body, headers=auth(investigator))
    ).status_code == 403
    visit = {"visit_date": today().isoformat(), "received_by": "某", "text": "x"}
    assert (
        await harness.client.post("/api/v1/visits", json=visit, headers=auth(investigator))
    ).status_code == 403
