"""Moving a person to another unit (or out of theirs) ends what they held through the old unit: their grant
of its key goes and the key is rotated as after offboarding (their copy then opens nothing), their wraps
that came through the unit go, a clue assigned to them personally stays readable while assigned, and the
new unit's key reaches them as it reaches any new member — on both databases."""

from __future__ import annotations

import json

from sqlalchemy import select

from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.models import ClueKeyWrap, CompartmentKey, UnitKeyGrant
from service.platform.crypto.envelope import EnvelopeError
from service.platform.errors import Forbidden
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, cli_env, run_cli, unique
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff

TEXT = "镇卫生院院长虚报医保结算，药品回扣分给科室负责人。"
WHY = "与被反映人系近亲属"


async def _clue(harness: Harness) -> str:
    response = await harness.client.post(
        "/api/v1/tips", json={"text": TEXT, "accused": {"name": unique("赵")}}
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        clue_id = await session.scalar(
            select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
        )
    assert clue_id is not None
    return clue_id


async def _unlocked(harness: Harness, token: str) -> compartment_keys.Unlocked:
    """What a request of the token's holder holds (the request also advances a due rotation)."""
    async with harness.runtime.session_factory() as session:
        principal = await auth_service.authenticate(session, token)
        await session.commit()
    assert principal.unlocked is not None
    return principal.unlocked


async def _opens(harness: Harness, token: str, clue_id: str) -> bool:
    """Whether the holder's own keys (personal and unit) open the clue's content; a refusal is a 403."""
    unlocked = await _unlocked(harness, token)
    async with harness.runtime.session_factory() as session:
        try:
            opened = await session.run_sync(
                lambda s: compartments.open_clue(s, clue_id=clue_id, unlocked=unlocked)
            )
        except Forbidden as exc:
            assert exc.status_code == 403
            return False
    assert opened is not None and json.loads(opened["content"])["text"] == TEXT
    return True


async def _assign(harness: Harness, supervisor: str, clue_id: str, assignee_id: str) -> None:
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": assignee_id}
    )
    assert response.status_code == 200, response.text


async def _audit(harness: Harness, object_id: str, prefix: str) -> list[tuple[str, dict[str, object]]]:
    async with harness.runtime.session_factory() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.details)
            .where(AuditEntry.object_id == object_id, AuditEntry.action.like(f"{prefix}%"))
            .order_by(AuditEntry.id)
        )
        return [(action, json.loads(details or "{}")) for action, details in rows]


async def _reasons(harness: Harness, clue_id: str, staff_id: str) -> list[str]:
    async with harness.runtime.session_factory() as session:
        return list(
            await session.scalars(
                select(ClueKeyWrap.reason)
                .join(CompartmentKey, CompartmentKey.key_id == ClueKeyWrap.key_id)
                .where(ClueKeyWrap.clue_id == clue_id, CompartmentKey.owner_id == staff_id)
            )
        )


async def test_a_member_moved_to_another_unit_reads_the_new_units_clues_and_no_longer_the_old_ones(
    harness: Harness,
) -> None:
    old_unit = await harness.add_unit(unique("区纪委监委第五室"))
    new_unit = await harness.add_unit(unique("区纪委监委第六室"))
    office = await harness.add_unit(unique("案管室"))
    _, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], office)
    mover_id, mover = await harness.add_staff(unique("核查调"), ["investigator"], old_unit)  # holds the key
    assignee_id, assignee = await harness.add_staff(unique("核查甲"), ["investigator"], old_unit)
    recused_id, _ = await harness.add_staff(unique("核查乙"), ["investigator"], old_unit)
    _, stayer = await harness.add_staff(unique("核查丙"), ["investigator"], old_unit)
    newcomer_id, newcomer = await harness.add_staff(unique("核查丁"), ["investigator"], new_unit)
    _, admin = await harness.add_staff(unique("管理"), ["admin"])
    copies = {p.public.key_id: p for p in (await _unlocked(harness, mover)).units}  # seals the others' grants
    await _unlocked(harness, newcomer)

    unit_clues = [await _clue(harness), await _clue(harness)]
    for clue_id in unit_clues:
        await _assign(harness, supervisor, clue_id, assignee_id)
    # A member is recused from one: the unit's wrap is replaced by wraps to each other member ("member").
    recused_clue = unit_clues[1]
    recusal = await harness.client.post(
        f"/api/v1/clues/{recused_clue}/recusals",
        headers=auth(supervisor),
        json={"staff_id": recused_id, "reason": WHY},
    )
    assert recusal.status_code == 201, recusal.text
    assert await _reasons(harness, recused_clue, mover_id) == ["member"]
    own_clue = await _clue(harness)  # assigned to the mover personally in the old unit
    await _assign(harness, supervisor, own_clue, mover_id)
    new_clue = await _clue(harness)
    await _assign(harness, supervisor, new_clue, newcomer_id)
    assert all([await _opens(harness, mover, c) for c in [*unit_clues, own_clue]])
    assert not await _opens(harness, mover, new_clue)

    moved = await harness.client.put(
        f"/api/v1/staff/{mover_id}/unit", headers=auth(admin), json={"unit_id": new_unit}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["unit_id"] == new_unit

    # At once: the old unit's clues refuse them (their grant went, their "member" wrap too) …
    for clue_id in unit_clues:
        assert not await _opens(harness, mover, clue_id)
    assert await _reasons(harness, recused_clue, mover_id) == []
    # … the clue assigned to them stays readable while assigned (the page too) …
    assert await _opens(harness, mover, own_clue)
    read = await harness.client.get(f"/api/v1/clues/{own_clue}", headers=auth(mover))
    assert read.status_code == 200 and read.json()["text"] == TEXT
    # … and the new unit's key reaches them once someone who holds it makes a request, as for any new member.
    assert not await _opens(harness, mover, new_clue)
    await _unlocked(harness, newcomer)
    assert await _opens(harness, mover, new_clue)

    # The old unit's key is rotated by a remaining member's request; its other members read everything —
    # in that very request too (it opens the wraps it has just moved to the new key).
    assert all([await _opens(harness, stayer, c) for c in unit_clues])
    assert all([await _opens(harness, assignee, c) for c in unit_clues])
    async with harness.runtime.session_factory() as session:
        old_keys = list(
            await session.scalars(
                select(CompartmentKey)
                .where(CompartmentKey.owner_kind == "unit", CompartmentKey.owner_id == old_unit)
                .order_by(CompartmentKey.created_at)
            )
        )
        wraps = (await session.execute(select(ClueKeyWrap.clue_id, ClueKeyWrap.wrapped))).all()
        granted_to_mover = list(
            await session.scalars(select(UnitKeyGrant.unit_key_id).where(UnitKeyGrant.staff_id == mover_id))
        )
    old, new = old_keys
    assert set(copies) == {old.key_id} and old.retired_at is not None and new.replaces == old.key_id
    assert new.key_id not in granted_to_mover and old.key_id not in granted_to_mover
    for clue_id, wrapped in wraps:  # the mover's copy of the old key opens nothing left in the database
        try:
            compartment_keys.unwrap_content_key(copies[old.key_id], clue_id, wrapped)
        except EnvelopeError:
            continue
        raise AssertionError(f"the old unit key still opens a wrap of {clue_id}")

    (change,) = await _audit(harness, mover_id, "staff.unit_changed")
    assert change[1]["from_unit_id"] == old_unit and change[1]["to_unit_id"] == new_unit
    assert change[1]["unit_grants_removed"] == 1 and change[1]["clue_wraps_removed"] == 1
    rotation = [action for action, _ in await _audit(harness, old_unit, "unit_key.rotation_")]
    assert rotation[0] == "unit_key.rotation_started" and rotation[-1] == "unit_key.rotation_finished"


async def test_a_member_removed_from_their_unit_keeps_only_what_is_assigned_to_them(harness: Harness) -> None:
    unit = await harness.add_unit(unique("区纪委监委第七室"))
    office = await harness.add_unit(unique("案管室"))
    _, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], office)
    leaver_id, leaver = await harness.add_staff(unique("核查离"), ["investigator"], unit)
    colleague_id, colleague = await harness.add_staff(unique("核查甲"), ["investigator"], unit)
    _, admin = await harness.add_staff(unique("管理"), ["admin"])
    await _unlocked(harness, leaver)
    theirs, colleagues = await _clue(harness), await _clue(harness)
    await _assign(harness, supervisor, theirs, leaver_id)
    await _assign(harness, supervisor, colleagues, colleague_id)

    removed = await harness.client.put(
        f"/api/v1/staff/{leaver_id}/unit", headers=auth(admin), json={"unit_id": None}
    )
    assert removed.status_code == 200 and removed.json()["unit_id"] is None, removed.text
    assert await _opens(harness, leaver, theirs) and not await _opens(harness, leaver, colleagues)
    assert await _opens(harness, colleague, colleagues) and await _opens(harness, colleague, theirs)


async def test_a_bad_move_is_refused_and_changes_nothing(harness: Harness) -> None:
    unit = await harness.add_unit(unique("区纪委监委第八室"))
    person_id, person = await harness.add_staff(unique("核查"), ["investigator"], unit)
    _, admin = await harness.add_staff(unique("管理"), ["admin"])
    before = {p.public.key_id for p in (await _unlocked(harness, person)).units}

    unknown = await harness.client.put(
        f"/api/v1/staff/{person_id}/unit", headers=auth(admin), json={"unit_id": "no-such-unit"}
    )
    assert unknown.status_code == 404 and "unit not found" in unknown.text
    same = await harness.client.put(
        f"/api/v1/staff/{person_id}/unit", headers=auth(admin), json={"unit_id": unit}
    )
    assert same.status_code == 409 and "already in that unit" in same.text
    not_admin = await harness.client.put(
        f"/api/v1/staff/{person_id}/unit", headers=auth(person), json={"unit_id": None}
    )
    assert not_admin.status_code == 403

    assert {p.public.key_id for p in (await _unlocked(harness, person)).units} == before
    me = await harness.client.get("/api/v1/me", headers=auth(person))
    assert me.json()["unit"]["id"] == unit
    assert await _audit(harness, person_id, "staff.unit_changed") == []
    async with harness.runtime.session_factory() as session:
        due = await session.scalar(
            select(CompartmentKey.rotation_due_at).where(
                CompartmentKey.owner_kind == "unit", CompartmentKey.owner_id == unit
            )
        )
    assert due is None


async def test_an_admin_moves_a_person_on_the_staff_site(harness: Harness) -> None:
    old_unit = await harness.add_unit(unique("区纪委监委第十室"))
    new_unit = await harness.add_unit(unique("区纪委监委第十一室"))
    person_id, person = await harness.add_staff(unique("核查"), ["investigator"], old_unit)
    await harness.add_staff(unique("核查留"), ["investigator"], old_unit)
    await _unlocked(harness, person)  # the first member: holds the old unit's key
    admin = await make_web_staff(harness, ["admin"])
    page_url = f"/staff/registry/admin/staff/{person_id}"
    async with log_in(harness, admin) as client:
        page = await client.get(page_url)
        assert page.status_code == 200 and "调整所在单位" in page.text
        token = csrf_of(page.text)
        # bad input and a missing CSRF token change nothing
        unknown = await client.post(f"{page_url}/unit", data={"csrf_token": token, "unit_id": "nope"})
        assert unknown.status_code == 404 and "单位不存在" in unknown.text
        same = await client.post(f"{page_url}/unit", data={"csrf_token": token, "unit_id": old_unit})
        assert same.status_code == 409 and "此人已在该单位" in same.text and "调整所在单位" in same.text
        forged = await client.post(f"{page_url}/unit", data={"unit_id": new_unit})
        assert forged.status_code == 403
        assert await _audit(harness, person_id, "staff.unit_changed") == []

        moved = await client.post(f"{page_url}/unit", data={"csrf_token": token, "unit_id": new_unit})
        assert moved.status_code == 303, moved.text
        page = await client.get(moved.headers["location"])
        assert f'value="{new_unit}" selected' in page.text
    (change,) = await _audit(harness, person_id, "staff.unit_changed")
    assert change[1]["to_unit_id"] == new_unit
    async with harness.runtime.session_factory() as session:
        due = await session.scalar(
            select(CompartmentKey.rotation_due_at).where(
                CompartmentKey.owner_kind == "unit", CompartmentKey.owner_id == old_unit
            )
        )
    assert due is not None  # a remaining member's next request replaces it


async def test_the_command_line_moves_a_person_and_rotate_key_finishes_the_old_units_rotation(
    harness: Harness,
) -> None:
    old_name, new_name = unique("区纪委监委第十二室"), unique("区纪委监委第十三室")
    old_unit, new_unit = await harness.add_unit(old_name), await harness.add_unit(new_name)
    office = await harness.add_unit(unique("案管室"))
    _, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], office)
    mover_name, stayer_name = unique("核查调"), unique("核查留")
    mover_id, mover = await harness.add_staff(mover_name, ["investigator"], old_unit)
    stayer_id, _ = await harness.add_staff(stayer_name, ["investigator"], old_unit)
    env = cli_env(harness.data_dir, harness.database_url)
    password = "correct horse battery 43"  # noqa: S105 - a test password
    assert (
        run_cli(["staff", "set-password", stayer_name, "--stdin"], env, stdin=password + "\n").returncode == 0
    )
    await _unlocked(harness, mover)  # the holder's request seals the stayer's waiting grant
    clue_id = await _clue(harness)
    await _assign(harness, supervisor, clue_id, stayer_id)

    unknown = run_cli(["staff", "move", mover_name, "--unit", unique("不存在的室")], env)
    assert unknown.returncode != 0 and "unit not found" in unknown.stderr
    moved = run_cli(["staff", "move", mover_name, "--unit", new_name], env)
    assert moved.returncode == 0, moved.stderr
    assert f"moved {mover_name} to {new_name}" in moved.stdout
    assert not await _opens(harness, mover, clue_id)
    done = run_cli(["unit", "rotate-key", "--as", stayer_name, "--stdin"], env, stdin=password + "\n")
    assert done.returncode == 0 and "1 unit key(s) replaced" in done.stdout, done.stderr
    rotation = [action for action, _ in await _audit(harness, old_unit, "unit_key.rotation_")]
    assert rotation[0] == "unit_key.rotation_started" and rotation[-1] == "unit_key.rotation_finished"
    (change,) = await _audit(harness, mover_id, "staff.unit_changed")
    assert change[1]["to_unit_id"] == new_unit
