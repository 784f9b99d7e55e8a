"""Switching a deployment from the international to the national suite by a setting alone: new envelopes
are SM2/SM4, new audit entries SM3, old clues still open and the mixed chain still verifies."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from service.audit import service as audit_service
from service.audit.models import AuditEntry
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.models import ClueSealed
from service.platform.crypto.envelope import Envelope
from service.platform.crypto.keys import HPKE_SUITE
from service.platform.crypto.national import NATIONAL_SUITE
from service.registry.models import NO_CASE_COPY, Clue
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
        # Compartments: a clue opens for the supervisors there when it is registered.
        _, supervisor = await app.add_staff(unique("督办"), ["supervisor"])
        old_number = await _submit(app.client, "派出所民警收了红包以后压着案子不立案，已经半年了。")
    async with running_app(
        data_dir, fresh_database_url, database_auto_upgrade=True, crypto_suite="national"
    ) as app:
        national_id, national = await app.add_staff(unique("督办"), ["supervisor"])
        new_number = await _submit(app.client, "法院执行局法官和被执行人私下吃饭，执行款一直不到位。")
        async with app.runtime.session_factory() as session:
            (national_key,) = await session.run_sync(
                lambda s: compartments.staff_keys(s, [national_id])[national_id]
            )
            assert national_key.suite == NATIONAL_SUITE  # new compartment keys follow the suite too
            clues = {c.registry_number: c for c in (await session.execute(select(Clue))).scalars()}
            # The fields are only in the compartment copy (no case-key copy): its suite is the key ring's.
            suites = {
                number: compartment_keys.clue_suite((await session.get(ClueSealed, clue.id)).content)
                for number, clue in clues.items()
            }
            entries = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars().all()
            report = await audit_service.verify(session)
        assert suites[old_number] == HPKE_SUITE and suites[new_number] == NATIONAL_SUITE
        assert clues[new_number].content == NO_CASE_COPY
        assert Envelope.from_bytes(clues[new_number].identity).suite == NATIONAL_SUITE
        assert {e.suite for e in entries} == {"sha256", "sm3"}
        assert report.problem is None
        for number, token in ((old_number, supervisor), (new_number, supervisor), (new_number, national)):
            response = await app.client.get(f"/api/v1/clues/{clues[number].id}", headers=auth(token))
            assert response.status_code == 200, response.text
            assert response.json()["accused"]["name"] == "李某"
        # The national supervisor was not there when the old clue was registered: no wrap, a clear refusal.
        refused = await app.client.get(f"/api/v1/clues/{clues[old_number].id}", headers=auth(national))
        assert refused.status_code == 403
