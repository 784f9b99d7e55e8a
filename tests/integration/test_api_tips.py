"""POST /api/v1/tips through httpx against the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.intake.models import Receipt
from service.intake.receipts import normalise_receipt, receipt_hash
from service.registry.models import Clue
from tests.helpers.app import Harness


async def count_rows(harness: Harness) -> tuple[int, int, int]:
    async with harness.runtime.session_factory() as session:
        clues = await session.scalar(select(func.count()).select_from(Clue))
        receipts = await session.scalar(select(func.count()).select_from(Receipt))
        audit = await session.scalar(select(func.count()).select_from(AuditEntry))
        return clues, receipts, audit


async def test_a_tip_is_registered_with_a_receipt(harness: Harness) -> None:
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": "派出所民警王某在办理我的案件时收了对方的红包，还打招呼让案子不立案。",
            "accused": {"name": "王某", "unit": "某某派出所", "position": "民警"},
            "incident": {"time": "去年春节前后", "place": "派出所"},
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"\d{5}( \d{5}){4}", body["receipt"])
    assert re.fullmatch(r"LG-\d{4}-\d{6}", body["registry_number"])
    async with harness.runtime.session_factory() as session:
        clue = await session.scalar(select(Clue).where(Clue.registry_number == body["registry_number"]))
        assert clue is not None
        assert clue.status == "registered" and clue.source == "public_report" and clue.channel == "web"
        assert clue.real_name is False and clue.identity is None
        assert (clue.due_at - clue.received_at).days in (28, 29, 30, 31)
        receipt = await session.scalar(select(Receipt).where(Receipt.clue_id == clue.id))
        code = normalise_receipt(body["receipt"])
        assert receipt.code_hash == receipt_hash(harness.runtime.lookup_key("receipt"), code)
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.object_id == clue.id))
        assert entry.action == "clue.registered" and entry.actor == "public"
        assert "王某" not in entry.details and "红包" not in entry.details


async def test_real_name_submitter_details_are_sealed_with_the_identity_key(harness: Harness) -> None:
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": "法院执行局有人吃拿卡要。",
            "anonymous": False,
            "submitter": {"name": "李四", "phone": "13800138000", "email": "li@example.com"},
        },
    )
    assert response.status_code == 201
    async with harness.runtime.session_factory() as session:
        clue = await session.scalar(
            select(Clue).where(Clue.registry_number == response.json()["registry_number"])
        )
        assert clue.real_name is True and clue.identity is not None
        assert not harness.runtime.keys.can_open("identity")  # no server role holds the identity key


async def test_validation_errors_name_the_field_and_store_nothing(harness: Harness) -> None:
    before = await count_rows(harness)
    cases = [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": 12}, "text"),
        ({"text": "x", "anonymous": "maybe"}, "anonymous"),
        ({"text": "x", "submitter": {"email": "not-an-email"}}, "submitter.email"),
        ({"text": "x", "submitter": {"phone": "call me"}}, "submitter.phone"),
        ({"text": "x", "accused": {"name": "a" * 201}}, "accused.name"),
        ({"text": "x", "unexpected": 1}, "unexpected"),
        ({"text": "x\x00y"}, "text"),
    ]
    for payload, field in cases:
        response = await harness.client.post("/api/v1/tips", json=payload)
        assert response.status_code == 422, (payload, response.text)
        fields = [f["field"] for f in response.json()["error"]["fields"]]
        assert field in fields, (payload, fields)
        assert "a" * 201 not in response.text and "not-an-email" not in response.text
    response = await harness.client.post(
        "/api/v1/tips", json={"text": "x", "category_hint": "no_such_category"}
    )
    assert response.status_code == 422
    for raw in (b"{not json", b"", b"[]", b'{"text": "\\ud800"}'):
        response = await harness.client.post(
            "/api/v1/tips", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, raw
    assert await count_rows(harness) == before


async def test_oversize_body_is_refused_with_413_and_stores_nothing(harness: Harness) -> None:
    before = await count_rows(harness)
    big = json.dumps({"text": "举报" * 200_000})
    response = await harness.client.post(
        "/api/v1/tips", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"

    async def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(100):
            yield b"x" * 10_000

    response = await harness.client.post(
        "/api/v1/tips", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert await count_rows(harness) == before


@pytest.mark.parametrize(
    "path", ["/report/", "/reportx", "/status/reply/x", "/api/v1/letters/abc/pages/x", "/api/v1/hotline/calls/"]
)
async def test_body_limit_exempts_exact_upload_paths_only(harness: Harness, path: str) -> None:
    """Only the streaming upload routes themselves skip the generic limit, not paths that share a prefix."""
    big = b"x" * (harness.runtime.settings.max_request_bytes + 1)
    response = await harness.client.post(path, content=big, headers={"content-type": "text/plain"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_text_over_the_length_limit_is_a_field_error(harness: Harness) -> None:
    response = await harness.client.post("/api/v1/tips", json={"text": "举" * 20_001})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "text"
