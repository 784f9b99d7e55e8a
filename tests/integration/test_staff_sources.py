"""Superior assignments, self-inspections and voluntary confessions through the API (both databases)."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime, timedelta

from sqlalchemy import select

from service.audit.models import AuditEntry
from service.platform.timeutil import LOCAL
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import assert_absent_from_database
from tests.helpers.registry import clue_fields

URL = "/api/v1/staff-sources"


def today() -> date:
    return datetime.now(LOCAL).date()


def superior(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "source": "superior_assigned",
        "text": "市委政法委交办：某监狱民警违规办理减刑，收取家属钱款。",
        "assigning_body": "市委政法委",
        "document_number": "政法交〔2026〕" + secrets.token_hex(2) + "号",
        "received_date": (today() - timedelta(days=2)).isoformat(),
        "deadline": (today() + timedelta(days=20)).isoformat(),
        "accused": {"name": "孙某", "unit": "某某监狱"},
    }
    body.update(overrides)
    return body


async def content_of(harness: Harness, clue: Clue) -> dict[str, object]:
    return (await clue_fields(harness, clue.id))["content"]


async def test_superior_assignment_sets_the_due_date_from_its_deadline(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    body = superior()
    response = await harness.client.post(URL, json=body, headers=auth(supervisor))
    assert response.status_code == 201, response.text
    assert "receipt" not in response.json() or response.json()["receipt"] is None
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, response.json()["clue_id"])
        assert clue.source == "superior_assigned" and clue.channel == "staff"
        due_local = clue.due_at.astimezone(LOCAL)
        assert due_local.date() == date.fromisoformat(str(body["deadline"])) and due_local.hour == 23
        assert clue.received_at.astimezone(LOCAL).date() == date.fromisoformat(str(body["received_date"]))
        details = (await content_of(harness, clue))["details"]["superior_assignment"]
        assert details["document_number"] == body["document_number"]
        assert details["assigning_body"] == "市委政法委"
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.object_id == clue.id, AuditEntry.action == "clue.registered")
        )
        assert entry is not None and "superior_assigned" in entry.details


async def test_self_inspection_records_inspection_and_recorder(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    body = {
        "source": "self_inspection",
        "text": "本级自查发现：派出所民警违规饮酒，公车私用。",
        "inspection": "2026年第三季度纪律作风自查",
        "recorded_by": "督察室王某",
        "accused": {"unit": "某某派出所"},
    }
    response = await harness.client.post(URL, json=body, headers=auth(supervisor))
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, response.json()["clue_id"])
        assert clue.source == "self_inspection" and clue.identity is None
        details = (await content_of(harness, clue))["details"]["self_inspection"]
        assert details == {"inspection": body["inspection"], "recorded_by": "督察室王某", "found_date": None}


async def test_voluntary_confession_seals_the_officer_and_is_filterable(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    name = "周" + secrets.token_hex(3)
    body = {
        "source": "voluntary_confession",
        "text": "本人主动交代：曾接受案件当事人宴请两次，并收受购物卡。",
        "officer": {
            "name": name,
            "unit": "某某区法院",
            "position": "审判员",
            "id_number": "11010119800101" + "1234",
        },
        "confession_date": today().isoformat(),
        "received_by": "纪检组李某",
    }
    response = await harness.client.post(URL, json=body, headers=auth(supervisor))
    assert response.status_code == 201, response.text
    clue_id = response.json()["clue_id"]
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        assert clue.source == "voluntary_confession" and clue.real_name is True and clue.identity is not None
        content = await content_of(harness, clue)
        assert content["details"]["leniency_policy"] == "自查从宽"
        accused = (await clue_fields(harness, clue_id))["accused"]
        assert name not in json.dumps(accused, ensure_ascii=False) and "审判员" not in json.dumps(accused)
    await assert_absent_from_database(harness, name)
    listed = await harness.client.get(
        f"{'/api/v1/clues'}?source=voluntary_confession&limit=200", headers=auth(supervisor)
    )
    assert clue_id in [c["id"] for c in listed.json()["items"]]
    assert all(c["source"] == "voluntary_confession" for c in listed.json()["items"])


async def test_required_fields_and_validation_errors(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    cases = [
        ({k: v for k, v in superior().items() if k != "document_number"}, "document_number"),
        ({k: v for k, v in superior().items() if k != "assigning_body"}, "assigning_body"),
        ({k: v for k, v in superior().items() if k != "deadline"}, "deadline"),
        (superior(received_date="not a date"), "received_date"),
        (superior(text=""), "text"),
        ({"source": "self_inspection", "text": "x", "recorded_by": "某"}, "inspection"),
        ({"source": "self_inspection", "text": "x", "inspection": "某"}, "recorded_by"),
        (
            {
                "source": "voluntary_confession",
                "text": "x",
                "confession_date": today().isoformat(),
                "received_by": "某",
            },
            "officer",
        ),
        ({"source": "nonsense", "text": "x"}, "body"),
    ]
    for body, field in cases:
        response = await harness.client.post(URL, json=body, headers=auth(supervisor))
        assert response.status_code == 422, (field, response.text)
        fields = [f["field"] for f in response.json()["error"]["fields"]]
        assert any(f.endswith(field) or f == field for f in fields), (field, fields)
    backwards = superior(deadline=(today() - timedelta(days=10)).isoformat())
    assert (await harness.client.post(URL, json=backwards, headers=auth(supervisor))).status_code == 422
    future = superior(
        received_date=(today() + timedelta(days=3)).isoformat(),
        deadline=(today() + timedelta(days=30)).isoformat(),
    )
    response = await harness.client.post(URL, json=future, headers=auth(supervisor))
    assert response.status_code == 422 and response.json()["error"]["message_en"]
    # Dates nobody means (found by fuzzing: they overflowed the conversion to UTC with a 500) are refused.
    for body in (
        superior(received_date="0001-01-01"),
        superior(deadline="9999-12-31"),
        {
            "source": "voluntary_confession",
            "text": "本人主动交代收受购物卡。",
            "officer": {"name": "某", "unit": "某某区法院"},
            "confession_date": "0001-01-02",
            "received_by": "纪检组李某",
        },
    ):
        response = await harness.client.post(URL, json=body, headers=auth(supervisor))
        assert response.status_code == 422 and "1900" in response.json()["error"]["message_en"], response.text


async def test_only_supervisors_register_staff_sources(harness: Harness) -> None:
    _, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    _, admin = await harness.add_staff(unique("adm"), ["admin"])
    for token in (investigator, operator, admin):
        response = await harness.client.post(URL, json=superior(), headers=auth(token))
        assert response.status_code == 403, response.text
