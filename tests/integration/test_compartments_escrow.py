"""Escrow recovery: when everyone who could read a unit's clue has left, custodians rebuild the escrow key
from their shares (the existing k-of-n custody) and hand the unit's clues and unit key to a new member."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from service.auth import service as auth_service
from service.custody import ceremony
from service.custody import service as custody
from service.platform.errors import Invalid
from service.registry.models import Clue
from tests.helpers.app import auth, running_app, unique

PHRASES = ("first passphrase 111", "second passphrase 222", "third passphrase 333")


async def test_custodians_recover_a_units_clues_for_a_new_member(
    fresh_database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    names = [unique("保管甲"), unique("保管乙"), unique("保管丙")]
    made = ceremony.init_keys(
        keys_dir=data_dir / "keys",
        custody_dir=data_dir / "custody",
        suite="international",
        custodians=[ceremony.Custodian(n, p) for n, p in zip(names, PHRASES, strict=True)],
        threshold=2,
    )
    assert made.escrow_key_id and not list(data_dir.rglob("escrow*.private.json"))  # only shares exist
    share = {n: next((data_dir / "custody").glob(f"escrow-*.{n}.share.json")) for n in names}

    async with running_app(data_dir, fresh_database_url, database_auto_upgrade=True) as app:
        for name in names:
            await app.add_staff(name, ["custodian"])
        unit = await app.add_unit(unique("区纪委监委第七室"))
        supervisor_id, supervisor = await app.add_staff(
            unique("督办"), ["supervisor"], await app.add_unit(unique("办"))
        )
        leaver_id, _ = await app.add_staff(unique("核查旧"), ["investigator"], unit)
        _, admin = await app.add_staff(unique("管理"), ["admin"])
        response = await app.client.post(
            "/api/v1/tips",
            json={"text": "区住建局科长收受开发商购物卡，验收时放水。", "accused": {"name": "钱某"}},
        )
        assert response.status_code == 201, response.text
        async with app.runtime.session_factory() as session:
            clue_id = await session.scalar(
                select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
            )
        assigned = await app.client.post(
            f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": leaver_id}
        )
        assert assigned.status_code == 200, assigned.text
        # Everyone who could read it leaves; a newcomer is assigned by a supervisor who holds no key to it.
        for person in (leaver_id, supervisor_id):
            assert (
                await app.client.post(f"/api/v1/staff/{person}/disable", headers=auth(admin))
            ).status_code == 200
        newcomer_id, newcomer = await app.add_staff(unique("核查新"), ["investigator"], unit)
        chief_id, chief = await app.add_staff(unique("新督办"), ["supervisor"])
        assigned = await app.client.post(
            f"/api/v1/clues/{clue_id}/assign", headers=auth(chief), json={"assignee_id": newcomer_id}
        )
        assert assigned.status_code == 200, assigned.text
        refused = await app.client.get(f"/api/v1/clues/{clue_id}", headers=auth(newcomer))
        assert refused.status_code == 403, refused.text

        async def recover(receiver: str, holders: list[str]) -> custody.UnitRecovery:
            async with app.runtime.session_factory() as session:
                result = await custody.recover_unit(
                    session,
                    unit_id=unit,
                    receiver=receiver,
                    shares=[custody.ShareInput(share[h], PHRASES[names.index(h)]) for h in holders],
                    actor="test",
                )
                await session.commit()
                return result

        with pytest.raises(Invalid):  # one custodian alone, even twice, does not make two
            await recover(newcomer_id, [names[0], names[0]])
        with pytest.raises(Invalid):  # only a member of the unit receives its clues
            await recover(chief_id, [names[0], names[1]])
        still = await app.client.get(f"/api/v1/clues/{clue_id}", headers=auth(newcomer))
        assert still.status_code == 403

        result = await recover(newcomer_id, [names[1], names[2]])
        assert result.clues == 1 and result.unit_key_granted
        read = await app.client.get(f"/api/v1/clues/{clue_id}", headers=auth(newcomer))
        assert read.status_code == 200, read.text
        assert "购物卡" in read.json()["text"]
        async with app.runtime.session_factory() as session:
            staff = await auth_service.get_staff(session, newcomer_id)
        assert not staff.disabled
