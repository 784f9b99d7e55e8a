"""Offboarding rotates the unit key: a disabled person's copy of their unit's key opens nothing in the
database afterwards. The rotation is done by a remaining member's requests (a bounded chunk each), resumes
after an interruption with both keys valid meanwhile, and by custodians through the escrow — on both
databases and both crypto suites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.compartments import keys as compartment_keys
from service.compartments import rotation
from service.compartments import service as compartments
from service.compartments.models import ClueKeyWrap, CompartmentKey, UnitKeyGrant
from service.custody import ceremony
from service.custody import service as custody
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import AnyKeyPair
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, cli_env, run_cli, running_app, unique

TEXT = "城关派出所民警收了好处费，把我举报的赌场案子压下来不办。"


async def _clues(harness: Harness, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await harness.client.post(
            "/api/v1/tips", json={"text": TEXT, "accused": {"name": unique("李")}}
        )
        assert response.status_code == 201, response.text
        async with harness.runtime.session_factory() as session:
            ids.append(
                await session.scalar(
                    select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
                )
            )
    return ids


async def _unit_pairs(harness: Harness, token: str) -> dict[str, AnyKeyPair]:
    """The unit keys a token's holder can open now (what a leaver could have copied)."""
    return {pair.public.key_id: pair for pair in (await _unlocked(harness, token)).units}


async def _unit_keys(harness: Harness, unit_id: str) -> list[CompartmentKey]:
    async with harness.runtime.session_factory() as session:
        return list(
            (
                await session.execute(
                    select(CompartmentKey)
                    .where(CompartmentKey.owner_kind == "unit", CompartmentKey.owner_id == unit_id)
                    .order_by(CompartmentKey.created_at)
                )
            ).scalars()
        )


async def _wraps_of_key(harness: Harness, key_id: str) -> int:
    async with harness.runtime.session_factory() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(ClueKeyWrap).where(ClueKeyWrap.key_id == key_id)
            )
            or 0
        )


async def _opens_nothing(harness: Harness, copies: dict[str, AnyKeyPair]) -> None:
    """No clue wrap or unit grant in the database opens with the leaver's copies of the old unit key."""
    async with harness.runtime.session_factory() as session:
        wraps = (await session.execute(select(ClueKeyWrap.clue_id, ClueKeyWrap.wrapped))).all()
        grants = (await session.execute(select(UnitKeyGrant.unit_key_id, UnitKeyGrant.staff_key_id))).all()
    for pair in copies.values():
        for clue_id, wrapped in wraps:
            with pytest.raises(EnvelopeError):
                compartment_keys.unwrap_content_key(pair, clue_id, wrapped)
        assert all(unit_key_id != pair.public.key_id for unit_key_id, _ in grants)


async def _setup(harness: Harness, clues: int) -> dict[str, object]:
    unit = await harness.add_unit(unique("区纪委监委第九室"))
    office = await harness.add_unit(unique("案管室"))
    supervisor_id, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], office)
    leaver_id, leaver = await harness.add_staff(unique("核查离"), ["investigator"], unit)  # first: holds it
    assignee_id, assignee = await harness.add_staff(unique("核查甲"), ["investigator"], unit)
    member_id, member = await harness.add_staff(unique("核查乙"), ["investigator"], unit)
    _, admin = await harness.add_staff(unique("管理"), ["admin"])
    copies = await _unit_pairs(harness, leaver)  # the leaver's request also seals the others' grants
    ids = await _clues(harness, clues)
    for clue_id in ids:
        assigned = await harness.client.post(
            f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": assignee_id}
        )
        assert assigned.status_code == 200, assigned.text
    return {
        "unit": unit,
        "ids": ids,
        "copies": copies,
        "leaver_id": leaver_id,
        "assignee": assignee,
        "member": member,
        "member_id": member_id,
        "admin": admin,
        "supervisor_id": supervisor_id,
    }


async def _unlocked(harness: Harness, token: str) -> compartment_keys.Unlocked:
    """What a request of the token's holder holds (the request also advances a due rotation by a chunk)."""
    async with harness.runtime.session_factory() as session:
        principal = await auth_service.authenticate(session, token)
        await session.commit()
    assert principal.unlocked is not None
    return principal.unlocked


async def _opens_all(harness: Harness, unlocked: compartment_keys.Unlocked, ids: list[str]) -> None:
    """A member who is not the assignee opens every clue: through the unit key (old or new)."""
    async with harness.runtime.session_factory() as session:
        for clue_id in ids:
            opened = await session.run_sync(
                lambda s, c=clue_id: compartments.open_clue(s, clue_id=c, unlocked=unlocked)
            )
            assert opened is not None and json.loads(opened["content"])["text"] == TEXT


async def test_a_remaining_members_request_rotates_the_unit_key_after_offboarding(harness: Harness) -> None:
    world = await _setup(harness, 3)
    unit, ids, copies = world["unit"], world["ids"], world["copies"]
    assert isinstance(unit, str) and isinstance(ids, list) and isinstance(copies, dict)
    (old_id,) = copies
    assert await _wraps_of_key(harness, old_id) == 3

    disabled = await harness.client.post(
        f"/api/v1/staff/{world['leaver_id']}/disable", headers=auth(str(world["admin"]))
    )
    assert disabled.status_code == 200, disabled.text
    (old,) = await _unit_keys(harness, unit)
    assert old.rotation_due_at is not None and old.retired_at is None

    # The next unlocked request of a remaining member replaces the key and rewraps the unit's clues.
    me = await harness.client.get("/api/v1/me", headers=auth(str(world["member"])))
    assert me.status_code == 200, me.text
    old, new = await _unit_keys(harness, unit)
    assert old.retired_at is not None and old.escrow_wrap is None
    assert new.replaces == old.key_id and new.retired_at is None and new.suite == old.suite
    assert new.escrow_wrap is not None  # custodians can still recover the unit
    assert await _wraps_of_key(harness, old_id) == 0 and await _wraps_of_key(harness, new.key_id) == 3
    member = await _unlocked(harness, str(world["member"]))
    assert [pair.public.key_id for pair in member.units] == [new.key_id]
    await _opens_all(harness, member, ids)  # through the new unit key
    for clue_id in ids:
        read = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(str(world["assignee"])))
        assert read.status_code == 200 and read.json()["text"] == TEXT
    await _opens_nothing(harness, copies)

    async with harness.runtime.session_factory() as session:
        entries = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.details)
                .where(AuditEntry.object_id == unit, AuditEntry.action.like("unit_key.rotation_%"))
                .order_by(AuditEntry.id)
            )
        ).all()
    actions = [a for a, _ in entries]
    assert actions == [
        "unit_key.rotation_started",
        "unit_key.rotation_progress",
        "unit_key.rotation_finished",
    ]
    progress = json.loads(entries[1][1])
    assert progress["rewrapped"] == 3 and progress["remaining"] == 0 and progress["new_key_id"] == new.key_id
    # Nothing more to do: later requests leave the keys alone.
    assert (await harness.client.get("/api/v1/me", headers=auth(str(world["member"])))).status_code == 200
    assert len(await _unit_keys(harness, unit)) == 2


@pytest.mark.parametrize("suite", ["international", "national"])
async def test_an_interrupted_rotation_leaves_both_keys_valid_and_resumes(
    suite: str, fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rotation, "REQUEST_CHUNK", 2)
    async with running_app(
        tmp_path / "data", fresh_database_url, database_auto_upgrade=True, crypto_suite=suite
    ) as app:
        world = await _setup(app, 5)
        unit, ids, copies = world["unit"], world["ids"], world["copies"]
        assert isinstance(unit, str) and isinstance(ids, list) and isinstance(copies, dict)
        (old_id,) = copies
        assert (
            await app.client.post(
                f"/api/v1/staff/{world['leaver_id']}/disable", headers=auth(str(world["admin"]))
            )
        ).status_code == 200

        # One request: one chunk of two. Both keys are valid; every clue opens, whichever key it is on.
        assert (await app.client.get("/api/v1/me", headers=auth(str(world["member"])))).status_code == 200
        old, new = await _unit_keys(app, unit)
        assert old.retired_at is None and new.replaces == old_id
        assert await _wraps_of_key(app, old_id) == 3 and await _wraps_of_key(app, new.key_id) == 2

        # A run killed after its first committed chunk: what it committed stays, nothing is half done.
        member = await _unlocked(app, str(world["member"]))  # one more chunk in this request
        member_pairs = {pair.public.key_id: pair for pair in member.units}
        assert set(member_pairs) == {old_id, new.key_id}
        await _opens_all(app, member, ids)
        assert await _wraps_of_key(app, old_id) == 1
        commits = 0

        async def crash() -> None:
            nonlocal commits
            commits += 1
            raise KeyboardInterrupt  # the process is stopped before the chunk's commit

        async with app.runtime.session_factory() as session:
            with pytest.raises(KeyboardInterrupt):
                await rotation.rotate_unit(
                    session,
                    unit_id=unit,
                    pairs=member_pairs,
                    escrow=None,
                    actor="test",
                    via="cli",
                    commit=crash,
                    chunk=1,
                )
            await session.rollback()
        assert commits == 1 and await _wraps_of_key(app, old_id) == 1
        await _opens_all(app, member, ids)

        # The next run continues where it stopped and finishes.
        async with app.runtime.session_factory() as session:
            steps = await rotation.rotate_unit(
                session,
                unit_id=unit,
                pairs=member_pairs,
                escrow=None,
                actor="test",
                via="cli",
                commit=session.commit,
            )
        assert steps and steps[-1].finished and not steps[0].started
        old, new = await _unit_keys(app, unit)
        assert old.retired_at is not None and await _wraps_of_key(app, new.key_id) == 5
        assert new.suite == old.suite and (suite == "national") == new.suite.startswith("sm2")
        member = await _unlocked(app, str(world["member"]))
        assert [pair.public.key_id for pair in member.units] == [new.key_id]
        await _opens_all(app, member, ids)
        await _opens_nothing(app, copies)


PHRASES = ("first passphrase 111", "second passphrase 222")


async def test_custodians_rotate_the_key_of_a_unit_whose_last_holder_left(
    fresh_database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    names = [unique("保管甲"), unique("保管乙")]
    ceremony.init_keys(
        keys_dir=data_dir / "keys",
        custody_dir=data_dir / "custody",
        suite="international",
        custodians=[ceremony.Custodian(n, p) for n, p in zip(names, PHRASES, strict=True)],
        threshold=2,
    )
    share = {n: next((data_dir / "custody").glob(f"escrow-*.{n}.share.json")) for n in names}
    async with running_app(data_dir, fresh_database_url, database_auto_upgrade=True) as app:
        for name in names:
            await app.add_staff(name, ["custodian"])
        unit = await app.add_unit(unique("区纪委监委第十室"))
        _, supervisor = await app.add_staff(unique("督办"), ["supervisor"], await app.add_unit(unique("办")))
        leaver_id, leaver = await app.add_staff(unique("核查旧"), ["investigator"], unit)
        _, admin = await app.add_staff(unique("管理"), ["admin"])
        copies = await _unit_pairs(app, leaver)
        (clue_id,) = await _clues(app, 1)
        assigned = await app.client.post(
            f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": leaver_id}
        )
        assert assigned.status_code == 200, assigned.text
        assert (
            await app.client.post(f"/api/v1/staff/{leaver_id}/disable", headers=auth(admin))
        ).status_code == 200
        newcomer_id, newcomer = await app.add_staff(unique("核查新"), ["investigator"], unit)
        async with app.runtime.session_factory() as session:
            result = await custody.recover_unit(
                session,
                unit_id=unit,
                receiver=newcomer_id,
                shares=[custody.ShareInput(share[n], p) for n, p in zip(names, PHRASES, strict=True)],
                actor="test",
                commit=session.commit,
            )
            await session.commit()
        assert result.unit_key_rotated and result.clues == 1
        old, new = await _unit_keys(app, unit)
        assert old.retired_at is not None and new.replaces == old.key_id and new.escrow_wrap is not None
        await _opens_all(app, await _unlocked(app, newcomer), [clue_id])
        async with app.runtime.session_factory() as session:
            granted = await session.get(UnitKeyGrant, (new.key_id, (await _staff_key(session, newcomer_id))))
        assert granted is not None and granted.wrapped is not None
        await _opens_nothing(app, copies)


async def _staff_key(session, staff_id: str) -> str:  # type: ignore[no-untyped-def]
    (row,) = await session.run_sync(lambda s: compartments.staff_keys(s, [staff_id])[staff_id])
    return row.key_id


async def test_a_member_rotates_the_unit_key_from_the_command_line_with_their_password(
    harness: Harness,
) -> None:
    unit = await harness.add_unit(unique("区纪委监委第十一室"))
    _, supervisor = await harness.add_staff(
        unique("督办"), ["supervisor"], await harness.add_unit(unique("办"))
    )
    leaver_id, leaver = await harness.add_staff(unique("核查离"), ["investigator"], unit)
    member_name = unique("核查留")
    await harness.add_staff(member_name, ["investigator"], unit)
    _, admin = await harness.add_staff(unique("管理"), ["admin"])
    env = cli_env(harness.data_dir, harness.database_url)
    password = "correct horse battery 42"  # noqa: S105 - a test password
    done = run_cli(["staff", "set-password", member_name, "--stdin"], env, stdin=password + "\n")
    assert done.returncode == 0, done.stderr
    copies = await _unit_pairs(harness, leaver)  # the holder's request seals the member's waiting grants
    ids = await _clues(harness, 2)
    for clue_id in ids:
        assigned = await harness.client.post(
            f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": leaver_id}
        )
        assert assigned.status_code == 200, assigned.text
    assert (
        await harness.client.post(f"/api/v1/staff/{leaver_id}/disable", headers=auth(admin))
    ).status_code == 200

    wrong = run_cli(["unit", "rotate-key", "--as", member_name, "--stdin"], env, stdin="wrong password\n")
    assert wrong.returncode != 0 and "does not unlock" in wrong.stderr and password not in wrong.stderr
    assert len(await _unit_keys(harness, unit)) == 1
    done = run_cli(["unit", "rotate-key", "--as", member_name, "--stdin"], env, stdin=password + "\n")
    assert done.returncode == 0, done.stderr
    assert "2 clue wraps rewrapped; 1 unit key(s) replaced" in done.stdout
    old, new = await _unit_keys(harness, unit)
    assert old.retired_at is not None and new.replaces == old.key_id
    await _opens_nothing(harness, copies)
