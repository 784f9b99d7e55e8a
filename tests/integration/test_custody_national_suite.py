"""Switching a deployment from the international to the national suite by a setting alone: new envelopes
are SM2/SM4, new audit entries SM3, old clues still open and the mixed chain still verifies."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from service.audit import service as audit_service
from service.audit.models import AuditEntry
from service.platform.crypto.envelope import Envelope
from service.platform.crypto.keys import HPKE_BATCH_SUITE
from service.platform.crypto.national import NATIONAL_SUITE
from service.registry.models import Clue
from tests.helpers.app import auth, running_app, unique


async def _submit(client, text: str) -> str:  # type: ignore[no-untyped-def]
    body = {
        "text": text,
        "accused": {"name": "李某"},
        "anonymous": False,
        "submitter": {"name": "王举报", "phone": "13900000000"},
    }
    response = await client.post("/api/v1/tips", json=body)
    assert response.status_code == 201, response.text
    return response.json()["registry_number"]


async def test_switch_to_national_suite(fresh_database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_app(data_dir, fresh_database_url, database_auto_upgrade=True) as app:
        old_number = await _submit(app.client, "派出所民警收了红包以后压着案子不立案，已经半年了。")
    async with running_app(
        data_dir, fresh_database_url, database_auto_upgrade=True, crypto_suite="national"
    ) as app:
        new_number = await _submit(app.client, "法院执行局法官和被执行人私下吃饭，执行款一直不到位。")
        _, supervisor = await app.add_staff(unique("督办"), ["supervisor"])
        async with app.runtime.session_factory() as session:
            clues = {c.registry_number: c for c in (await session.execute(select(Clue))).scalars()}
            entries = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars().all()
            report = await audit_service.verify(session)
        assert Envelope.from_bytes(clues[old_number].content).suite == HPKE_BATCH_SUITE
        for field in ("content", "accused", "classification", "identity"):
            assert Envelope.from_bytes(getattr(clues[new_number], field)).suite == NATIONAL_SUITE
        assert {e.suite for e in entries} == {"sha256", "sm3"}
        assert report.problem is None
        for number in (old_number, new_number):
            response = await app.client.get(f"/api/v1/clues/{clues[number].id}", headers=auth(supervisor))
            assert response.status_code == 200, response.text
            assert response.json()["accused"]["name"] == "李某"
