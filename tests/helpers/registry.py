"""A small organisation for the registry tests (units, staff, a routing rule), a submitted tip, a step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.app.runtime import key_paths
from service.compartments import service as compartments
from service.compartments.keys import CLUE_FIELDS, Unlocked
from service.platform.crypto.keys import read_key_pair
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique


@dataclass
class World:
    accused_unit: str
    accused_unit_name: str
    handling_unit: str
    other_unit: str
    supervisor: tuple[str, str]
    approver: tuple[str, str]
    investigator: tuple[str, str]
    other_investigator: tuple[str, str]
    operator: tuple[str, str]
    admin: tuple[str, str]


async def make_world(harness: Harness) -> World:
    accused_name = unique("城东派出所")
    accused_unit = await harness.add_unit(accused_name)
    handling_unit = await harness.add_unit(unique("区纪委监委"))
    other_unit = await harness.add_unit(unique("督查室"))
    world = World(
        accused_unit=accused_unit,
        accused_unit_name=accused_name,
        handling_unit=handling_unit,
        other_unit=other_unit,
        supervisor=await harness.add_staff(unique("sup"), ["supervisor"], other_unit),
        approver=await harness.add_staff(unique("lead"), ["supervisor"], other_unit),
        investigator=await harness.add_staff(unique("inv"), ["investigator"], handling_unit),
        other_investigator=await harness.add_staff(unique("inv2"), ["investigator"], other_unit),
        operator=await harness.add_staff(unique("op"), ["operator"]),
        admin=await harness.add_staff(unique("adm"), ["admin"]),
    )
    response = await harness.client.post(
        "/api/v1/routing-rules",
        headers=auth(world.admin[1]),
        json={
            "handling_unit_id": handling_unit,
            "accused_unit_id": accused_unit,
            "default_assignee_id": world.investigator[0],
            "priority": 10,
        },
    )
    assert response.status_code == 201, response.text
    return world


async def submit(harness: Harness, world: World, anonymous: bool = True) -> str:
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": "派出所民警收了对方的红包，还打招呼让案子不立案。",
            "accused": {"name": unique("张"), "unit": world.accused_unit_name, "position": "民警"},
            "anonymous": anonymous,
            **({} if anonymous else {"submitter": {"name": "李四", "phone": "13800138000"}}),
        },
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        return await session.scalar(
            select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
        )


async def step(harness: Harness, clue_id: str, token: str, action: str, **fields: object):  # type: ignore[no-untyped-def]
    return await harness.client.post(
        f"/api/v1/clues/{clue_id}/transitions",
        headers=auth(token),
        json={"action": action, "reason": f"理由：{action}", **fields},
    )


async def clue_fields(harness: Harness, clue_id: str) -> dict[str, Any]:
    """A clue's own fields (content, accused, classification) as a test reads them: a clue registered since
    compartments through its escrow wrap (the escrow private key is on disk in the test data dir only; in
    production it exists as custodians' shares), an older clue with the case key."""
    escrow = read_key_pair(key_paths(harness.runtime.settings)["escrow_private"])
    # A read-only session: callers may hold a transaction of their own (on SQLite, its write lock).
    async with harness.runtime.read_session_factory() as session:
        opened = await session.run_sync(
            lambda s: compartments.open_clue(s, clue_id=clue_id, unlocked=Unlocked(personal=escrow))
        )
        if opened is None:
            clue = await session.get(Clue, clue_id)
            assert clue is not None
            opened = {
                n: harness.runtime.keys.open(getattr(clue, n), f"clues/{clue_id}/{n}") for n in CLUE_FIELDS
            }
    return {name: json.loads(data) for name, data in opened.items()}


async def seal_case_copy(harness: Harness, clue_id: str) -> None:
    """Make a clue look registered before compartments: its fields as case-key envelopes on the row."""
    fields = await clue_fields(harness, clue_id)
    keys = harness.runtime.keys
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        for name, value in fields.items():
            data = json.dumps(value, ensure_ascii=False).encode("utf-8")
            setattr(clue, name, keys.seal_case(data, f"clues/{clue_id}/{name}"))
        await session.commit()


async def make_old(harness: Harness, clue_id: str) -> None:
    """Make a clue exactly as one registered before compartments: its fields as case-key envelopes on the
    row, every item of it (``registry.adoption.ITEMS``) sealed to the case key under its own binding, and no
    ``clue_sealed`` row or wrap. Opened through the escrow, on disk in the test data dir only."""
    from service.compartments.models import ClueKeyWrap, ClueSealed

    await seal_case_copy(harness, clue_id)
    await seal_items_to_case(harness, clue_id)
    async with harness.runtime.session_factory() as session:
        await session.execute(delete(ClueKeyWrap).where(ClueKeyWrap.clue_id == clue_id))
        await session.execute(delete(ClueSealed).where(ClueSealed.clue_id == clue_id))
        await session.commit()


async def seal_items_to_case(harness: Harness, clue_id: str) -> int:
    """Every item of a compartmented clue (``registry.adoption.ITEMS``) sealed to the case key under its own
    binding, as items written before they were sealed to the clue; the number resealed."""
    from service.compartments import keys as ck
    from service.platform.db import Base
    from service.registry import adoption

    escrow = read_key_pair(key_paths(harness.runtime.settings)["escrow_private"])
    keys = harness.runtime.keys

    def work(s: Session) -> int:
        pair = compartments.clue_private(s, clue_id=clue_id, unlocked=Unlocked(personal=escrow))
        count = 0
        for name, column, binding in adoption.ITEMS:
            table = Base.metadata.tables[name]
            for row in list(adoption.item_rows(s, name, column, [clue_id])):
                data = getattr(row, column)
                if ck.sealed_to_clue(data):
                    where = binding(row)
                    s.execute(
                        update(table)
                        .where(*(c == getattr(row, c.name) for c in table.primary_key.columns))
                        .values({column: keys.seal_case(ck.open_sealed(pair, data, where), where)})
                    )
                    count += 1
        return count

    async with harness.runtime.session_factory() as session:
        count = await session.run_sync(work)
        await session.commit()
    return count
