"""A clue's own key pair on both databases: intake stores its public half, anyone seals to it, only a holder
of a wrap of the clue's content key opens what was sealed; a clue registered before the public half existed
gets it when a holder first opens it."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from service.auth import service as auth_service
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.models import ClueSealed
from service.platform.crypto.envelope import EnvelopeError
from service.platform.errors import Forbidden
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique

TEXT = "乡财政所会计挪用扶贫资金，给亲戚发了三年的补贴。"


async def _submit(harness: Harness) -> str:
    response = await harness.client.post("/api/v1/tips", json={"text": TEXT})
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue_id = await session.scalar(
            select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
        )
    assert clue_id
    return clue_id


async def test_seal_to_clue_opens_only_for_holders_and_not_with_the_case_key(harness: Harness) -> None:
    office = await harness.add_unit(unique("信访室"))
    _, holder_token = await harness.add_staff(unique("督办"), ["supervisor"], office)
    clue_id = await _submit(harness)
    _, late_token = await harness.add_staff(unique("新督办"), ["supervisor"], office)
    binding = f"messages/{unique('m')}/body"
    async with harness.runtime.session_factory() as session:
        holder = await auth_service.authenticate(session, holder_token)
        late = await auth_service.authenticate(session, late_token)
        public = await session.run_sync(lambda s: compartments.clue_public(s, clue_id))
        assert public is not None and public.key_id.startswith("clue-")
        assert public.suite == harness.runtime.keys.suite
        sealed = await session.run_sync(
            lambda s: compartments.seal_to_clue(s, clue_id=clue_id, data=TEXT.encode(), binding=binding)
        )
        assert sealed is not None and TEXT.encode() not in sealed

        opened = await session.run_sync(
            lambda s: compartments.open_from_clue(
                s, clue_id=clue_id, unlocked=holder.unlocked, data=sealed, binding=binding
            )
        )
        assert opened.decode() == TEXT
        for unlocked in (late.unlocked, None):  # no wrap to them, or no unlocked key at all: 403
            with pytest.raises(Forbidden):
                await session.run_sync(
                    lambda s, u=unlocked: compartments.open_from_clue(
                        s, clue_id=clue_id, unlocked=u, data=sealed, binding=binding
                    )
                )
        with pytest.raises(EnvelopeError):  # moved to another record
            await session.run_sync(
                lambda s: compartments.open_from_clue(
                    s, clue_id=clue_id, unlocked=holder.unlocked, data=sealed, binding=binding + "x"
                )
            )
    with pytest.raises(EnvelopeError):  # the staff server's own key ring opens none of it
        harness.runtime.keys.open(sealed, binding)


async def test_a_clue_without_its_public_key_gets_it_when_a_holder_opens_it(harness: Harness) -> None:
    office = await harness.add_unit(unique("信访室"))
    _, holder_token = await harness.add_staff(unique("督办"), ["supervisor"], office)
    clue_id = await _submit(harness)
    async with harness.runtime.session_factory() as session:
        stored = await session.scalar(select(ClueSealed.public).where(ClueSealed.clue_id == clue_id))
        # As registered before revision 0033: no public half yet, so items go to the case key (None).
        await session.execute(update(ClueSealed).where(ClueSealed.clue_id == clue_id).values(public=None))
        await session.commit()
    async with harness.runtime.session_factory() as session:
        assert (
            await session.run_sync(
                lambda s: compartments.seal_to_clue(s, clue_id=clue_id, data=b"x", binding="messages/m/body")
            )
            is None
        )
    read = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(holder_token))
    assert read.status_code == 200, read.text
    async with harness.runtime.session_factory() as session:
        holder = await auth_service.authenticate(session, holder_token)
        filled = await session.scalar(select(ClueSealed.public).where(ClueSealed.clue_id == clue_id))
        assert filled == stored
        pair = await session.run_sync(
            lambda s: compartments.clue_private(s, clue_id=clue_id, unlocked=holder.unlocked)
        )
    assert compartment_keys.public_json(pair.public) == stored


async def test_a_clue_sealed_before_compartments_has_no_public_key(harness: Harness) -> None:
    clue_id = await _submit(harness)
    async with harness.runtime.session_factory() as session:
        await session.execute(ClueSealed.__table__.delete().where(ClueSealed.clue_id == clue_id))
        await session.commit()
        assert await session.run_sync(lambda s: compartments.clue_public(s, clue_id)) is None
        assert (
            await session.run_sync(
                lambda s: compartments.seal_to_clue(s, clue_id=clue_id, data=b"x", binding="messages/m/body")
            )
            is None
        )
