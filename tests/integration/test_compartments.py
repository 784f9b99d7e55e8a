"""Compartments through real HTTP on both databases: a clue opens with the requester's own unlocked key —
the assignee reads it, someone holding no wrap (joined later, recused, a token without a key) gets a clear
refusal, reassignment and disabling remove wraps, a web login unlocks the personal key for its session."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select

from service.audit.models import AuditEntry
from service.auth import sessions as session_service
from service.auth.login_models import StaffSession
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.models import ClueKeyWrap, ClueSealed, CompartmentKey, UnitKeyGrant
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import private_bytes
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique
from tests.helpers.staff_web import make_web_staff

TEXT = "派出所副所长收了开发商二十万，帮忙把强拆的报警压下来，不出警。"


async def _submit(harness: Harness, accused_unit: str) -> str:
    response = await harness.client.post(
        "/api/v1/tips", json={"text": TEXT, "accused": {"name": unique("王"), "unit": accused_unit}}
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue_id = await session.scalar(
            select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
        )
    assert clue_id
    return clue_id


async def _wrapped_to(harness: Harness, clue_id: str) -> dict[str, str]:
    """key owner id (or 'escrow') -> reason, for the clue's wraps."""
    async with harness.runtime.session_factory() as session:
        rows = await session.execute(
            select(CompartmentKey.owner_kind, CompartmentKey.owner_id, ClueKeyWrap.reason)
            .join(CompartmentKey, CompartmentKey.key_id == ClueKeyWrap.key_id)
            .where(ClueKeyWrap.clue_id == clue_id)
        )
        return {owner_id or kind: reason for kind, owner_id, reason in rows}


async def _read(harness: Harness, clue_id: str, token: str):  # type: ignore[no-untyped-def]
    return await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(token))


async def test_assignee_reads_others_are_refused_and_wraps_follow_the_clue(harness: Harness) -> None:
    accused_name = unique("城南派出所")
    accused_unit = await harness.add_unit(accused_name)
    handling = await harness.add_unit(unique("区纪委监委第三室"))
    office = await harness.add_unit(unique("信访室"))
    supervisor_id, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], office)
    recused_id, recused = await harness.add_staff(unique("所长"), ["supervisor"], accused_unit)
    first_id, first = await harness.add_staff(unique("核查甲"), ["investigator"], handling)
    second_id, second = await harness.add_staff(unique("核查乙"), ["investigator"], handling)
    _, admin = await harness.add_staff(unique("管理"), ["admin"])

    clue_id = await _submit(harness, accused_name)
    async with harness.runtime.session_factory() as session:
        sealed = await session.get(ClueSealed, clue_id)
        assert sealed is not None and TEXT.encode() not in sealed.content
    wrapped = await _wrapped_to(harness, clue_id)
    assert wrapped.get("escrow") == "escrow" and wrapped.get(supervisor_id) == "supervisor"
    assert recused_id not in wrapped  # a supervisor of the accused unit is not given the key

    read = await _read(harness, clue_id, supervisor)
    assert read.status_code == 200, read.text
    assert read.json()["text"].startswith("派出所副所长")

    # The staff server's own key ring (every private key on its disk) opens none of the compartment copy:
    # not the sealed fields, not a single wrap of the content key.
    async with harness.runtime.session_factory() as session:
        sealed = await session.get(ClueSealed, clue_id)
        wraps = (
            (await session.execute(select(ClueKeyWrap).where(ClueKeyWrap.clue_id == clue_id))).scalars().all()
        )
    assert sealed is not None and wraps
    for data, binding in [
        *(
            (getattr(sealed, f), compartment_keys.field_binding(clue_id, f))
            for f in compartment_keys.CLUE_FIELDS
        ),
        *((w.wrapped, compartment_keys.clue_key_binding(clue_id)) for w in wraps),
    ]:
        with pytest.raises(EnvelopeError):
            harness.runtime.keys.open(data, binding)

    # Recused, and a supervisor who joined after the clue was registered: a clear refusal, not the text.
    late_id, late = await harness.add_staff(unique("新督办"), ["supervisor"], office)
    for token in (recused, late):
        refused = await _read(harness, clue_id, token)
        assert refused.status_code == 403, refused.text
        assert "密钥" in refused.json()["error"]["message"] and TEXT not in refused.text

    # Assignment rewraps to the assignee and the unit; the assignee reads with their own key.
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": first_id}
    )
    assert assigned.status_code == 200, assigned.text
    wrapped = await _wrapped_to(harness, clue_id)
    assert wrapped[first_id] == "assignee" and wrapped[handling] == "unit"
    read = await _read(harness, clue_id, first)
    assert read.status_code == 200 and read.json()["text"].startswith("派出所副所长")

    # Reassignment: the previous assignee's wrap goes, the new one reads.
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": second_id}
    )
    assert assigned.status_code == 200, assigned.text
    wrapped = await _wrapped_to(harness, clue_id)
    assert first_id not in wrapped and wrapped[second_id] == "assignee"
    assert (await _read(harness, clue_id, second)).status_code == 200

    # A token an administrator issues for someone else cannot carry their key: it reads nothing.
    issued = await harness.client.post(f"/api/v1/staff/{supervisor_id}/tokens", headers=auth(admin))
    assert issued.status_code == 201, issued.text
    keyless = await _read(harness, clue_id, issued.json()["token"])
    assert keyless.status_code == 403 and "未解锁个人密钥" in keyless.json()["error"]["message"]

    # Disabling removes every wrap of the account's keys and retires them.
    disabled = await harness.client.post(f"/api/v1/staff/{second_id}/disable", headers=auth(admin))
    assert disabled.status_code == 200, disabled.text
    assert second_id not in await _wrapped_to(harness, clue_id)
    async with harness.runtime.session_factory() as session:
        keys = (
            (await session.execute(select(CompartmentKey).where(CompartmentKey.owner_id == second_id)))
            .scalars()
            .all()
        )
        assert keys and all(k.retired_at is not None and k.password_wrap is None for k in keys)
        grants = await session.scalar(select(UnitKeyGrant.staff_id).where(UnitKeyGrant.staff_id == second_id))
        assert grants is None
        details = await session.scalar(
            select(AuditEntry.details).where(
                AuditEntry.object_id == second_id, AuditEntry.action == "staff.disabled"
            )
        )
    assert json.loads(details)["clue_wraps_removed"] == 1
    assert (await _read(harness, clue_id, second)).status_code == 401

    # The refusals and the reads are audited; nobody's audit entry holds content.
    async with harness.runtime.session_factory() as session:
        reads = (
            (
                await session.execute(
                    select(AuditEntry.details).where(
                        AuditEntry.object_id == clue_id, AuditEntry.action == "clue.read"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert reads and all(json.loads(d)["key"] == "compartment" for d in reads)
    assert late_id


async def test_unit_key_reaches_later_members_through_a_holder(harness: Harness) -> None:
    unit = await harness.add_unit(unique("区纪委监委第五室"))
    first_id, first = await harness.add_staff(unique("室主任"), ["supervisor"], unit)
    later_id, later = await harness.add_staff(unique("副主任"), ["supervisor"], unit)
    async with harness.runtime.session_factory() as session:
        grants = dict(
            (
                await session.execute(
                    select(UnitKeyGrant.staff_id, UnitKeyGrant.wrapped).where(
                        UnitKeyGrant.staff_id.in_([first_id, later_id])
                    )
                )
            ).all()
        )
    assert grants[first_id] is not None and grants[later_id] is None  # waits for a holder
    me = await harness.client.get("/api/v1/me", headers=auth(first))  # the holder's request seals it
    assert me.status_code == 200, me.text
    async with harness.runtime.session_factory() as session:
        wrapped = await session.scalar(select(UnitKeyGrant.wrapped).where(UnitKeyGrant.staff_id == later_id))
        unit_key = await session.run_sync(lambda s: compartments.unit_key(s, unit))
        assert wrapped is not None and unit_key is not None and unit_key.escrow_wrap is not None
    assert later  # the later member's own requests now hold the unit key (checked below via a clue)
    investigator_id, investigator = await harness.add_staff(unique("核查丙"), ["investigator"], unit)
    clue_id = await _submit(harness, unique("某局"))
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=auth(first), json={"assignee_id": investigator_id}
    )
    assert assigned.status_code == 200, assigned.text
    # The later member reads through the unit's wrap even after their own supervisor wrap is removed.
    async with harness.runtime.session_factory() as session:
        own = await session.run_sync(lambda s: compartments.staff_keys(s, [later_id])[later_id])
        await session.execute(
            delete(ClueKeyWrap).where(
                ClueKeyWrap.clue_id == clue_id, ClueKeyWrap.key_id.in_([k.key_id for k in own])
            )
        )
        await session.commit()
    read = await _read(harness, clue_id, later)
    assert read.status_code == 200, read.text


async def test_web_login_unlocks_the_personal_key_for_the_session_only(harness: Harness) -> None:
    person = await make_web_staff(harness, ["supervisor"])
    clue_id = await _submit(harness, unique("某所"))
    async with harness.runtime.session_factory() as session:
        result = await session_service.attempt_login(
            session,
            runtime=harness.runtime,
            name=person.name,
            password=person.password,
            totp_code=person.code(),
        )
        await session.commit()
    assert result.ok and result.principal is not None and result.principal.unlocked is not None
    personal = result.principal.unlocked.personal
    async with harness.runtime.session_factory() as session:
        row = await session.scalar(select(StaffSession).where(StaffSession.staff_id == person.id))
        key_row = await session.get(CompartmentKey, personal.public.key_id)
        assert row is not None and row.key_wrap is not None and key_row is not None
        # Neither the session's wrap nor the password's holds the private key in the clear.
        assert (
            private_bytes(personal) not in row.key_wrap
            and private_bytes(personal) not in key_row.password_wrap
        )
        # The cookie's secret unlocks it again on the next request; without it the row opens nothing.
        principal, _ = await session_service.authenticate_session(
            session, token=result.token, settings=harness.runtime.settings
        )
        opened = await session.run_sync(
            lambda s: compartments.open_clue(s, clue_id=clue_id, unlocked=principal.unlocked)
        )
        assert opened is not None and TEXT in json.loads(opened["content"])["text"]
        try:
            compartment_keys.open_under_secret(
                row.key_wrap, "not the cookie", session_service.session_label(row.id)
            )
        except ValueError:
            pass
        else:
            raise AssertionError("a session wrap opened without its cookie")
        await session_service.logout(session, row=row)
        await session.commit()
        assert (await session.get(StaffSession, row.id)).key_wrap is None  # type: ignore[union-attr]
