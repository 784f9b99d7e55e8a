"""Identity custody: the key ceremony, the two-person release, the one-custodian contact release, recusal,
and the proof that the database and every file without the custodians' passphrases open nothing."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.classification import classifier
from service.custody import service as custody
from service.custody.ceremony import Custodian, init_keys, rotate_keys
from service.custody.models import CustodyRequest
from service.intake import service as intake_service
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import KeyRing, read_public_key
from service.platform.db import Base
from service.platform.errors import Conflict, Forbidden, Invalid
from service.registry import recusal
from service.registry.models import NO_CASE_COPY, Clue
from tests.helpers.app import Harness, cli_env, run_cli, unique

PASSPHRASES = {"a": "correct horse battery A", "b": "correct horse battery B", "c": "correct horse battery C"}


@dataclasses.dataclass
class World:
    runtime: object
    keys: KeyRing
    custody_dir: Path
    names: dict[str, str]  # "a" -> account name
    supervisor: str
    accused_unit_staff: str
    words_key: bytes  # lookup_key(recusal.WORDS_KEY_LABEL): recusal asks the keyed accused words


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    keys_dir, custody_dir = tmp_path_factory.mktemp("keys"), tmp_path_factory.mktemp("custody")
    names = {k: unique(f"保管人{k}") for k in PASSPHRASES}
    init_keys(
        keys_dir=keys_dir,
        custody_dir=custody_dir,
        suite="international",
        custodians=[Custodian(names[k], PASSPHRASES[k]) for k in PASSPHRASES],
        threshold=2,
    )
    return keys_dir, custody_dir, names


async def _world(harness: Harness, ceremony: tuple[Path, Path, dict[str, str]]) -> World:
    keys_dir, custody_dir, names = ceremony
    base = harness.runtime.keys
    ring = KeyRing(
        case_public=base.case_public,
        identity_public=read_public_key(keys_dir / "identity.public.json"),
        contact_public=read_public_key(keys_dir / "contact.public.json"),
        private=base._private.values(),
    )
    async with harness.runtime.session_factory() as session:
        from service.auth.models import Staff

        existing = set((await session.execute(select(Staff.name))).scalars())
    for name in names.values():
        if name not in existing:
            await harness.add_staff(name, ["custodian"])
    supervisor = unique("督办")
    await harness.add_staff(supervisor, ["supervisor"])
    accused_unit_name = unique("城关派出所")
    accused_unit = await harness.add_unit(accused_unit_name)
    colleague = unique("同单位保管人")
    await harness.add_staff(colleague, ["custodian", "supervisor"], accused_unit)
    runtime = dataclasses.replace(harness.runtime, keys=ring)
    words_key = harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL)
    world = World(runtime, ring, custody_dir, names, supervisor, colleague, words_key)
    world.accused_unit_id = accused_unit  # type: ignore[attr-defined]
    world.accused_unit_name = accused_unit_name  # type: ignore[attr-defined]
    return world


async def _submit(
    world: World, harness: Harness, *, unit_id: str | None = None, accused: dict[str, str] | None = None
) -> str:
    submitter = {
        "name": "王举报",
        "id_number": "110101199001011234",
        "phone": "13900000001",
        "email": "w@example.cn",
    }
    submission = intake_service.Submission(
        text="派出所民警收了红包以后压着案子不立案，我叫王举报，电话13900000001。",
        channel="web",
        anonymous=False,
        accused=accused or {"name": "李某"},
        submitter=submitter,
    )
    tip = await world.runtime.intake.submit(submission, actor="public")
    if unit_id:
        async with harness.runtime.session_factory() as session:
            (await session.get(Clue, tip.clue_id)).accused_unit_id = unit_id
            await session.commit()
    return tip.clue_id


def _share(world: World, who: str) -> custody.ShareInput:
    (path,) = world.custody_dir.glob(f"identity-*.{world.names[who]}.share.json")
    return custody.ShareInput(path, PASSPHRASES[who])


async def test_two_person_release_end_to_end(harness: Harness, ceremony) -> None:  # type: ignore[no-untyped-def]
    world = await _world(harness, ceremony)
    clue_id = await _submit(world, harness)
    factory = harness.runtime.session_factory

    # Nobody holding only database access and every server key can open the identity.
    async with factory() as session:
        from service.registry.models import Clue

        clue = await session.get(Clue, clue_id)
        with pytest.raises(EnvelopeError):
            world.keys.open(clue.identity, f"clues/{clue_id}/identity")

    async with factory() as session:
        row = await custody.request_release(
            session,
            clue_id=clue_id,
            requester=world.names["a"],
            reason="实名举报人需要核实身份",
            kind="identity",
            keys=world.keys,
            words_key=world.words_key,
        )
        request_id = row.id
        await session.commit()

    async with factory() as session:
        with pytest.raises(Forbidden):  # one person cannot approve their own request
            await custody.decide(
                session,
                request_id=request_id,
                approver=world.names["a"],
                approve=True,
                keys=world.keys,
                words_key=world.words_key,
            )
    async with factory() as session:
        with pytest.raises(Conflict):  # not yet approved
            await custody.release_identity(
                session,
                request_id=request_id,
                receiver=world.names["a"],
                shares=[_share(world, "a"), _share(world, "b")],
                keys=world.keys,
            )
    async with factory() as session:
        await custody.decide(
            session,
            request_id=request_id,
            approver=world.supervisor,
            approve=True,
            keys=world.keys,
            words_key=world.words_key,
        )
        await session.commit()

    async with factory() as session:
        with pytest.raises(Invalid):  # one share is not enough
            await custody.release_identity(
                session,
                request_id=request_id,
                receiver=world.names["a"],
                shares=[_share(world, "a")],
                keys=world.keys,
            )
    async with factory() as session:
        wrong = custody.ShareInput(_share(world, "b").path, "not the passphrase!!")
        with pytest.raises(Invalid):
            await custody.release_identity(
                session,
                request_id=request_id,
                receiver=world.names["a"],
                shares=[_share(world, "a"), wrong],
                keys=world.keys,
            )
    async with factory() as session:
        with pytest.raises(Invalid):  # the same custodian twice is still one person
            await custody.release_identity(
                session,
                request_id=request_id,
                receiver=world.names["a"],
                shares=[_share(world, "a"), _share(world, "a")],
                keys=world.keys,
            )
    async with factory() as session:
        with pytest.raises(Forbidden):  # only the requester receives
            await custody.release_identity(
                session,
                request_id=request_id,
                receiver=world.names["b"],
                shares=[_share(world, "a"), _share(world, "b")],
                keys=world.keys,
            )

    async with factory() as session:
        identity = await custody.release_identity(
            session,
            request_id=request_id,
            receiver=world.names["a"],
            shares=[_share(world, "a"), _share(world, "c")],
            keys=world.keys,
        )
        await session.commit()
    assert identity["name"] == "王举报" and identity["id_number"] == "110101199001011234"
    assert "13900000001" in identity["unmasked_text"]

    async with factory() as session:  # single use
        with pytest.raises(Conflict):
            await custody.release_identity(
                session,
                request_id=request_id,
                receiver=world.names["a"],
                shares=[_share(world, "a"), _share(world, "b")],
                keys=world.keys,
            )
        entries = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.details)
                .where(AuditEntry.object_id == clue_id)
                .order_by(AuditEntry.id)
            )
        ).all()
    actions = [a for a, _ in entries]
    assert actions[-3:] == ["custody.requested", "custody.approved", "custody.released"]
    blob = json.dumps([d for _, d in entries], ensure_ascii=False)
    assert "王举报" not in blob and "13900000001" not in blob and "实名举报人" not in blob


async def test_refusal_and_expiry(harness: Harness, ceremony) -> None:  # type: ignore[no-untyped-def]
    world = await _world(harness, ceremony)
    clue_id = await _submit(world, harness)
    factory = harness.runtime.session_factory
    async with factory() as session:
        first = await custody.request_release(
            session,
            clue_id=clue_id,
            requester=world.names["a"],
            reason="需要核实身份",
            kind="identity",
            keys=world.keys,
            words_key=world.words_key,
        )
        second = await custody.request_release(
            session,
            clue_id=clue_id,
            requester=world.names["a"],
            reason="需要核实身份",
            kind="identity",
            keys=world.keys,
            words_key=world.words_key,
        )
        await custody.decide(
            session,
            request_id=first.id,
            approver=world.names["b"],
            approve=False,
            keys=world.keys,
            words_key=world.words_key,
        )
        await custody.decide(
            session,
            request_id=second.id,
            approver=world.names["b"],
            approve=True,
            keys=world.keys,
            words_key=world.words_key,
            window=timedelta(seconds=-1),
        )
        await session.commit()
    async with factory() as session:
        with pytest.raises(Conflict):
            await custody.release_identity(
                session,
                request_id=first.id,
                receiver=world.names["a"],
                shares=[_share(world, "a"), _share(world, "b")],
                keys=world.keys,
            )
    async with factory() as session:
        with pytest.raises(Conflict):
            await custody.release_identity(
                session,
                request_id=second.id,
                receiver=world.names["a"],
                shares=[_share(world, "a"), _share(world, "b")],
                keys=world.keys,
            )
        await session.commit()
    async with factory() as session:
        statuses = {r.id: r.status for r in (await session.execute(select(CustodyRequest))).scalars()}
        assert statuses[first.id] == "refused" and statuses[second.id] == "expired"
        actions = (
            (await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id)))
            .scalars()
            .all()
        )
        assert "custody.refused" in actions


async def test_colleagues_of_the_accused_are_recused(harness: Harness, ceremony) -> None:  # type: ignore[no-untyped-def]
    world = await _world(harness, ceremony)
    clue_id = await _submit(world, harness, unit_id=world.accused_unit_id)  # type: ignore[attr-defined]
    factory = harness.runtime.session_factory
    async with factory() as session:
        with pytest.raises(Conflict):
            await custody.request_release(
                session,
                clue_id=clue_id,
                requester=world.accused_unit_staff,
                reason="需要核实身份",
                kind="identity",
                keys=world.keys,
                words_key=world.words_key,
            )
    async with factory() as session:
        row = await custody.request_release(
            session,
            clue_id=clue_id,
            requester=world.names["a"],
            reason="需要核实身份",
            kind="identity",
            keys=world.keys,
            words_key=world.words_key,
        )
        with pytest.raises(Conflict):
            await custody.decide(
                session,
                request_id=row.id,
                approver=world.accused_unit_staff,
                approve=True,
                keys=world.keys,
                words_key=world.words_key,
            )


async def test_colleagues_named_only_in_the_reporters_words_are_recused(harness: Harness, ceremony) -> None:  # type: ignore[no-untyped-def]
    """A compartmented clue (no case-key copy) whose accused unit the reporter wrote in words that name a
    registered unit without being its exact name: no accused unit is resolved, so only the keyed words
    (``clues.accused_words``) can tell — the same check as assignment. Its staff are refused to request
    and to approve; someone else may request, and nothing of the refused attempts is kept."""
    world = await _world(harness, ceremony)
    clue_id = await _submit(
        world,
        harness,
        accused={"name": "李某", "unit": f"{world.accused_unit_name}的民警"},  # type: ignore[attr-defined]
    )
    factory = harness.runtime.session_factory
    async with factory() as session:
        clue = await session.get(Clue, clue_id)
        assert clue is not None and clue.accused_unit_id is None and clue.accused == NO_CASE_COPY
    async with factory() as session:
        with pytest.raises(Conflict, match="回避"):
            await custody.request_release(
                session,
                clue_id=clue_id,
                requester=world.accused_unit_staff,
                reason="需要核实身份",
                kind="identity",
                keys=world.keys,
                words_key=world.words_key,
            )
        await session.rollback()
    async with factory() as session:
        pending = await session.scalars(select(CustodyRequest).where(CustodyRequest.clue_id == clue_id))
        assert list(pending) == []
        row = await custody.request_release(
            session,
            clue_id=clue_id,
            requester=world.names["a"],
            reason="需要核实身份",
            kind="identity",
            keys=world.keys,
            words_key=world.words_key,
        )
        with pytest.raises(Conflict, match="回避"):
            await custody.decide(
                session,
                request_id=row.id,
                approver=world.accused_unit_staff,
                approve=True,
                keys=world.keys,
                words_key=world.words_key,
            )


async def test_contact_only_release_by_one_custodian(harness: Harness, ceremony) -> None:  # type: ignore[no-untyped-def]
    world = await _world(harness, ceremony)
    clue_id = await _submit(world, harness)
    (key_file,) = world.custody_dir.glob(f"contact-*.{world.names['b']}.key.json")
    async with harness.runtime.session_factory() as session:
        with pytest.raises(Forbidden):  # someone else's copy
            await custody.release_contact(
                session,
                clue_id=clue_id,
                custodian=world.names["a"],
                reason="法定反馈：告知受理情况",
                key_file=custody.ShareInput(key_file, PASSPHRASES["b"]),
                keys=world.keys,
                words_key=world.words_key,
            )
    async with harness.runtime.session_factory() as session:
        contact = await custody.release_contact(
            session,
            clue_id=clue_id,
            custodian=world.names["b"],
            reason="法定反馈：告知受理情况",
            key_file=custody.ShareInput(key_file, PASSPHRASES["b"]),
            keys=world.keys,
            words_key=world.words_key,
        )
        await session.commit()
    assert contact == {"phone": "13900000001", "email": "w@example.cn"}  # no name, no id number
    async with harness.runtime.session_factory() as session:
        actions = (
            (await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id)))
            .scalars()
            .all()
        )
    assert "custody.contact_released" in actions
    # The contact key is no identity key: its holder cannot open the identity envelope with it.
    (share,) = world.custody_dir.glob(f"identity-*.{world.names['b']}.share.json")
    assert share.read_text().count("王举报") == 0


def test_rotation_keeps_old_case_key(tmp_path: Path) -> None:
    keys_dir, custody_dir = tmp_path / "k", tmp_path / "c"
    people = [Custodian("甲", PASSPHRASES["a"]), Custodian("乙", PASSPHRASES["b"])]
    first = init_keys(
        keys_dir=keys_dir, custody_dir=custody_dir, suite="national", custodians=people, threshold=2
    )
    with pytest.raises(Exception, match="already exist"):
        init_keys(
            keys_dir=keys_dir, custody_dir=custody_dir, suite="national", custodians=people, threshold=2
        )
    second = rotate_keys(
        keys_dir=keys_dir, custody_dir=custody_dir, suite="national", custodians=people, threshold=2
    )
    assert second.case_key_id != first.case_key_id and second.retired_case_key is not None
    assert second.retired_case_key.exists()
    assert sorted(p.name for p in keys_dir.glob("case*.private.json")) == sorted(
        [f"case-{first.case_key_id}.national.private.json", "case.national.private.json"]
    )
    assert not list(keys_dir.glob("identity*.private.json")) and not list(custody_dir.glob("*private*"))


async def test_release_includes_the_originals_of_later_reporter_texts(harness: Harness, ceremony) -> None:  # type: ignore[no-untyped-def]
    """A reporter's follow-up is masked for staff; its original is released with the identity."""
    from service.intake import originals
    from service.messages import service as messages_service

    world = await _world(harness, ceremony)
    submission = intake_service.Submission(
        text="法院执行局干警吃了原告吃被告。", channel="web", anonymous=False, submitter={"name": "陈某"}
    )
    tip = await world.runtime.intake.submit(submission, actor="public")
    factory = harness.runtime.session_factory
    async with factory() as session:
        await messages_service.reporter_send(
            session,
            clue_id=tip.clue_id,
            code=tip.receipt,
            keys=world.keys,
            name_key=world.runtime.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL),
            text="我电话13900000002，随时找我。",
        )
        await messages_service.reporter_send(
            session,
            clue_id=tip.clue_id,
            code=tip.receipt,
            keys=world.keys,
            name_key=world.runtime.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL),
            text="没有别的补充了。",
        )
        row = await custody.request_release(
            session,
            clue_id=tip.clue_id,
            requester=world.names["b"],
            reason="需要联系实名举报人核实",
            kind="identity",
            keys=world.keys,
            words_key=world.words_key,
        )
        await session.commit()
    async with factory() as session:
        await custody.decide(
            session,
            request_id=row.id,
            approver=world.supervisor,
            approve=True,
            keys=world.keys,
            words_key=world.words_key,
        )
        await session.commit()
    async with factory() as session:
        later = await originals.later_originals(session, tip.clue_id)
        assert len(later) == 1  # only the message masking changed
        identity = await custody.release_identity(
            session,
            request_id=row.id,
            receiver=world.names["b"],
            shares=[_share(world, "b"), _share(world, "c")],
            keys=world.keys,
            later=later,
        )
        await session.commit()
    assert identity["name"] == "陈某"
    (opened,) = identity["later_originals"].values()
    assert opened == {"text": "我电话13900000002，随时找我。"}
    async with factory() as session:
        released = (
            await session.execute(
                select(AuditEntry).where(
                    AuditEntry.object_id == tip.clue_id, AuditEntry.action == "custody.released"
                )
            )
        ).scalar_one()
    assert json.loads(released.details)["later_originals"] == [later[0].label]


async def test_a_reason_is_sealed_to_the_clue_and_read_only_by_its_holders(
    harness: Harness, ceremony
) -> None:  # type: ignore[no-untyped-def]
    world = await _world(harness, ceremony)
    holder_name = unique("持有线索的督办")
    _, holder = await harness.add_staff(holder_name, ["supervisor"])  # there at registration: a wrap
    clue_id = await _submit(world, harness)
    _, outsider = await harness.add_staff(unique("后来的保管人"), ["custodian"])  # no wrap of this clue
    reason = f"实名举报人需当面核实{unique('')}"
    factory = harness.runtime.session_factory
    async with factory() as session:
        row = await custody.request_release(
            session,
            clue_id=clue_id,
            requester=world.names["a"],
            reason=reason,
            kind="identity",
            keys=world.keys,
            words_key=world.words_key,
        )
        await custody.decide(
            session,
            request_id=row.id,
            approver=holder_name,
            approve=True,
            keys=world.keys,
            words_key=world.words_key,
        )
        await session.commit()
        request_id, sealed = row.id, row.reason

    # Sealed to the clue's own key: not the case key the staff server may hold, and in no column as text.
    assert Envelope.from_bytes(sealed).key_id not in world.keys.key_ids("case")
    async with factory() as session:
        for table in Base.metadata.sorted_tables:
            for values in (await session.execute(select(table))).all():
                assert not any(reason.encode() in _as_bytes(v) for v in values), table.name

    async def views(token: str) -> custody.RequestView:
        async with factory() as session:
            viewer = await auth_service.authenticate(session, token)
            found = await custody.list_requests(session, keys=world.keys, viewer=viewer)
            await session.commit()
        return next(v for v in found if v.request.id == request_id)

    read = await views(holder)
    assert read.reason == reason and read.sealed is None
    withheld = await views(outsider)
    assert withheld.reason is None and withheld.sealed == custody.SEALED_REASON
    async with factory() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "custody_requests.read"))
        )
    # The holder's read is audited (request ids only); the outsider opened nothing, so nothing was read.
    assert any(request_id in e.details and reason not in e.details for e in entries)

    # The command line lists it the same way, the viewer's token on standard input.
    env = cli_env(harness.data_dir, harness.database_url)
    listed = run_cli(["custody", "list", "--reasons"], env, stdin=holder + "\n")
    assert listed.returncode == 0, listed.stderr
    assert f"{request_id}  clue={clue_id}" in listed.stdout and f"reason: {reason}" in listed.stdout
    listed = run_cli(["custody", "list", "--reasons"], env, stdin=outsider + "\n")
    assert listed.returncode == 0, listed.stderr
    assert reason not in listed.stdout
    assert "已加密：您无权阅读此线索 / sealed: you do not hold this clue" in listed.stdout
    assert "reason:" not in run_cli(["custody", "list"], env).stdout
    refused = run_cli(["custody", "list", "--reasons"], env, stdin="not-a-token\n")
    assert refused.returncode == 1 and "token" in refused.stderr and reason not in refused.stdout


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
