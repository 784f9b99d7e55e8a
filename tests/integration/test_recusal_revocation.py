"""Recusal revokes: a person recused from a clue loses their wraps of it, and a recused member of the
handling unit does not read it through the unit key either — the unit's wrap is replaced by wraps to its
other members, on assignment and reassignment too (both databases)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.models import ClueKeyWrap, CompartmentKey
from service.platform.crypto.envelope import EnvelopeError
from service.platform.errors import Forbidden
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique

TEXT = "区住建局科长收受开发商购物卡，验收时放水，还让亲戚承包工程。"
WHY = "与被反映人系近亲属"


async def _wrapped_to(harness: Harness, clue_id: str) -> dict[str, str]:
    """key owner id -> reason, for the clue's wraps."""
    async with harness.runtime.session_factory() as session:
        rows = await session.execute(
            select(CompartmentKey.owner_id, ClueKeyWrap.reason)
            .join(CompartmentKey, CompartmentKey.key_id == ClueKeyWrap.key_id)
            .where(ClueKeyWrap.clue_id == clue_id, CompartmentKey.owner_kind != "escrow")
        )
        return {str(owner_id): reason for owner_id, reason in rows}


async def _opens(harness: Harness, token: str, clue_id: str) -> bool:
    """Whether the token holder's own keys (personal and unit) open the clue — whatever the page shows."""
    async with harness.runtime.session_factory() as session:
        principal = await auth_service.authenticate(session, token)
        await session.commit()
        try:
            opened = await session.run_sync(
                lambda s: compartments.open_clue(s, clue_id=clue_id, unlocked=principal.unlocked)
            )
        except Forbidden:
            return False
    assert opened is not None and json.loads(opened["content"])["text"] == TEXT
    return True


async def test_recused_people_lose_their_wraps_and_the_unit_key_no_longer_opens_for_them(
    harness: Harness,
) -> None:
    handling = await harness.add_unit(unique("区纪委监委第四室"))
    office = await harness.add_unit(unique("案管室"))
    supervisor_id, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], office)
    colleague_id, colleague = await harness.add_staff(unique("督办乙"), ["supervisor"], office)
    assignee_id, assignee = await harness.add_staff(unique("核查甲"), ["investigator"], handling)
    recused_id, recused = await harness.add_staff(unique("核查乙"), ["investigator"], handling)
    member_id, member = await harness.add_staff(unique("核查丙"), ["investigator"], handling)
    await harness.client.get(
        "/api/v1/me", headers=auth(assignee)
    )  # the first member seals the others' grants
    response = await harness.client.post(
        "/api/v1/tips", json={"text": TEXT, "accused": {"name": unique("赵"), "unit": unique("住建局")}}
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue_id = await session.scalar(
            select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
        )
    assert clue_id
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": assignee_id}
    )
    assert assigned.status_code == 200, assigned.text
    assert await _opens(harness, recused, clue_id) and await _opens(harness, colleague, clue_id)

    # Only a supervisor records a recusal; the assignee must be reassigned first.
    url = f"/api/v1/clues/{clue_id}/recusals"
    refused = await harness.client.post(
        url, headers=auth(assignee), json={"staff_id": recused_id, "reason": WHY}
    )
    assert refused.status_code == 403, refused.text
    busy = await harness.client.post(
        url, headers=auth(supervisor), json={"staff_id": assignee_id, "reason": WHY}
    )
    assert busy.status_code == 409 and "改派" in busy.json()["error"]["message"]
    # A reason is required (422, nothing recorded); the colleague still reads the clue.
    for body in ({"staff_id": colleague_id}, {"staff_id": colleague_id, "reason": "  "}):
        missing = await harness.client.post(url, headers=auth(supervisor), json=body)
        assert missing.status_code == 422, missing.text
    assert colleague_id in await _wrapped_to(harness, clue_id)

    # A supervisor recused: their own wrap goes, they read nothing.
    done = await harness.client.post(
        url, headers=auth(supervisor), json={"staff_id": colleague_id, "reason": WHY}
    )
    assert done.status_code == 201 and done.json()["wraps_removed"] == 1, done.text
    assert colleague_id not in await _wrapped_to(harness, clue_id)
    read = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(colleague))
    assert read.status_code == 403 and TEXT not in read.text

    # A member of the handling unit recused: the unit's wrap is replaced by the other members' own wraps.
    done = await harness.client.post(
        url, headers=auth(supervisor), json={"staff_id": recused_id, "reason": WHY}
    )
    assert done.status_code == 201, done.text
    wrapped = await _wrapped_to(harness, clue_id)
    assert handling not in wrapped and recused_id not in wrapped
    assert wrapped[member_id] == "member" and wrapped[assignee_id] == "assignee"
    assert not await _opens(harness, recused, clue_id)
    assert await _opens(harness, member, clue_id)
    again = await harness.client.post(
        url, headers=auth(supervisor), json={"staff_id": recused_id, "reason": WHY}
    )
    assert again.status_code == 409

    # The recused person cannot be assigned; reassignment within the unit keeps the unit key out.
    refused = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": recused_id}
    )
    assert refused.status_code == 409 and "回避" in refused.json()["error"]["message"]
    moved = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": member_id}
    )
    assert moved.status_code == 200, moved.text
    wrapped = await _wrapped_to(harness, clue_id)
    assert handling not in wrapped and recused_id not in wrapped
    assert member_id in wrapped and wrapped[assignee_id] == "member"  # the previous assignee: a member again
    assert not await _opens(harness, recused, clue_id)
    assert await _opens(harness, assignee, clue_id)

    # The members' wraps are not the case key's: the staff server's key ring opens none of them.
    async with harness.runtime.session_factory() as session:
        wraps = (
            (await session.execute(select(ClueKeyWrap).where(ClueKeyWrap.clue_id == clue_id))).scalars().all()
        )
        details = (
            await session.execute(
                select(AuditEntry.details).where(
                    AuditEntry.object_id == clue_id, AuditEntry.action == "clue.recusal_recorded"
                )
            )
        ).scalars()
        audited = [json.loads(d) for d in details]
    for wrap in wraps:
        with pytest.raises(EnvelopeError):
            harness.runtime.keys.open(wrap.wrapped, compartment_keys.clue_key_binding(clue_id))
    assert {d["staff_id"] for d in audited} == {colleague_id, recused_id}
    assert all(d["key_wrapped"] for d in audited)
