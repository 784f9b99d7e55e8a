"""Near-duplicate signatures and LSH bands are keyed with the server secret: a copy of the database alone
cannot test a report for a phrase (nor find a guessed text's bands), while the service with its secret still
links near-duplicates. Migration 0024 clears unkeyed rows and queues every clue to be signed again.
Both databases (the ``backend`` parameter), each test on a database of its own (it clears shared tables)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from datasketch import MinHash
from sqlalchemy import delete, insert, select, update

from service.classification import dedup
from service.classification import service as classification_service
from service.classification.models import ClueLink, NearDuplicateBand, NearDuplicatePending
from service.platform.crypto.keys import KeyRing
from service.registry.models import Clue, ClueState
from tests.helpers.app import Harness, running_app, unique
from tests.helpers.registry import clue_fields, make_world, seal_case_copy

PHRASE = "城关派出所副所长长期收受辖区内娱乐场所老板的好处费"
BASE = f"我要反映，某某县公安局{PHRASE}，每逢检查提前通风报信，群众多次举报都不了了之。"
MIGRATION = Path(__file__).resolve().parents[2] / "alembic" / "versions"
MIGRATION = next(MIGRATION.glob("*_0024_keyed_near_duplicate_signatures.py"))


# What anyone can compute from the code and the public seed, without the server's secret.
def _public_signature(text: str) -> bytes:
    minhash = MinHash(num_perm=dedup.NUM_PERM, seed=dedup.SEED, scheme=dedup.SCHEME)
    shingles = dedup._shingles(text)
    if shingles:
        minhash.update_batch(list(shingles))
    return np.asarray(minhash.hashvalues, dtype="<u8").tobytes()


def _public_bands(signature: bytes) -> set[tuple[int, int]]:
    values = np.frombuffer(signature, dtype="<u8")
    return {
        (
            band,
            int.from_bytes(
                hashlib.blake2b(values[band * 6 : band * 6 + 6].tobytes(), digest_size=8).digest(), "little"
            )
            >> 1,
        )
        for band in range(dedup.BANDS)
    }


def _phrase_slots(signature: bytes, phrase: str) -> int:
    """The phrase test: MinHash slots whose stored minimum is the phrase's own minimum (a report holding the
    phrase has about |phrase shingles| / |text shingles| of them, another report none)."""
    stored = np.frombuffer(signature, dtype="<u8")
    return int(np.count_nonzero(stored == np.frombuffer(_public_signature(phrase), dtype="<u8")))


async def _submit(harness: Harness, world, text: str) -> str:  # type: ignore[no-untyped-def]
    response = await harness.client.post(
        "/api/v1/tips",
        json={"text": text, "accused": {"name": unique("张"), "unit": world.accused_unit_name}},
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        return await session.scalar(
            select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
        )


async def _masked_text(harness: Harness, clue_id: str) -> str:
    return (await clue_fields(harness, clue_id))["content"]["text"]


async def _database_copy(harness: Harness) -> tuple[dict[str, bytes], set[tuple[int, int]]]:
    async with harness.runtime.session_factory() as session:
        signatures = dict(
            (
                await session.execute(
                    select(ClueState.clue_id, ClueState.near_signature).where(
                        ClueState.near_signature.is_not(None)
                    )
                )
            ).all()
        )
        bands = set((await session.execute(select(NearDuplicateBand.band, NearDuplicateBand.bucket))).all())
    return signatures, bands


async def _links(harness: Harness) -> set[frozenset[str]]:
    async with harness.runtime.session_factory() as session:
        return {
            frozenset(pair)
            for pair in (await session.execute(select(ClueLink.clue_id, ClueLink.other_id))).all()
        }


async def test_database_alone_answers_no_phrase_question_and_the_service_still_links(
    tmp_path: Path, fresh_database_url: str
) -> None:
    async with running_app(tmp_path, fresh_database_url) as harness:
        world = await make_world(harness)
        first = await _submit(harness, world, BASE)
        again = await _submit(harness, world, BASE.replace("，", ",") + "请领导重视！")
        other = await _submit(harness, world, "法院执行局的法官拖着案子不执行，当事人多次去问都说等等。")
        await classification_service.link_pending_near_duplicates(harness.runtime)

        # With the secret: the near-duplicates are found and linked, the unrelated report is not.
        links = await _links(harness)
        assert frozenset((first, again)) in links
        assert not any(other in pair for pair in links)

        signatures, bands = await _database_copy(harness)
        assert {first, again, other} <= set(signatures)
        text = await _masked_text(harness, first)
        assert PHRASE in text
        # The attack works on an unkeyed signature of that text (so the test below means something) ...
        assert _phrase_slots(_public_signature(text), PHRASE) >= 10
        assert _phrase_slots(_public_signature(text), "检察院的检察官与律师勾结压案") == 0
        # ... and fails on what the database holds: no slot, no band, not even for the exact text.
        assert _phrase_slots(signatures[first], PHRASE) == 0
        assert dedup.signature_similarity(signatures[first], _public_signature(text)) < 0.1
        assert not _public_bands(_public_signature(text)) & bands
        # The keyed signature is the one the service makes with its secret.
        key = harness.runtime.lookup_key(dedup.KEY_LABEL)
        assert signatures[first] == dedup.near_duplicate_signature(text, key=key)


def _run_migration(connection) -> None:  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("migration_0024", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with Operations.context(MigrationContext.configure(connection)):
        module.upgrade()


async def test_migration_replaces_unkeyed_signatures_and_bands_with_keyed_ones(
    tmp_path: Path, fresh_database_url: str
) -> None:
    async with running_app(tmp_path, fresh_database_url) as harness:
        world = await make_world(harness)
        first = await _submit(harness, world, BASE)
        again = await _submit(harness, world, BASE + "请尽快查处。")
        for clue_id in (first, again):  # registered before compartments, as the migration met them
            await seal_case_copy(harness, clue_id)
        await classification_service.link_pending_near_duplicates(harness.runtime)
        # Rows as the unkeyed scheme stored them before this change.
        text = await _masked_text(harness, first)
        old = {clue_id: _public_signature(await _masked_text(harness, clue_id)) for clue_id in (first, again)}

        def store_unkeyed(session) -> None:  # type: ignore[no-untyped-def]
            session.execute(delete(NearDuplicateBand))
            for clue_id, signature in old.items():
                session.execute(
                    update(ClueState).where(ClueState.clue_id == clue_id).values(near_signature=signature)
                )
                session.execute(
                    insert(NearDuplicateBand),
                    [{"band": b, "bucket": k, "clue_id": clue_id} for b, k in _public_bands(signature)],
                )

        await harness.runtime.write(store_unkeyed)
        signatures, bands = await _database_copy(harness)
        assert _phrase_slots(signatures[first], PHRASE) >= 10  # the leak this migration closes

        await harness.runtime.write(lambda session: _run_migration(session.connection()))
        signatures, bands = await _database_copy(harness)
        assert signatures == {} and bands == set()
        async with harness.runtime.session_factory() as session:
            queued = set((await session.scalars(select(NearDuplicatePending.clue_id))).all())
            every = set((await session.scalars(select(Clue.id))).all())
        assert queued == every

        await classification_service.link_pending_near_duplicates(harness.runtime)
        signatures, bands = await _database_copy(harness)
        key = harness.runtime.lookup_key(dedup.KEY_LABEL)
        assert signatures[first] == dedup.near_duplicate_signature(text, key=key)
        assert _phrase_slots(signatures[first], PHRASE) == 0
        assert not _public_bands(_public_signature(text)) & bands
        assert frozenset((first, again)) in await _links(harness)


async def _queued_unsigned(harness: Harness, clue_id: str) -> None:
    """As if queued before intake signed (revision 0034), and so registered before compartments: the task
    must sign it from the case key."""
    await seal_case_copy(harness, clue_id)
    async with harness.runtime.session_factory() as session:
        await session.execute(
            update(NearDuplicatePending).where(NearDuplicatePending.clue_id == clue_id).values(signature=None)
        )
        await session.commit()


async def test_a_clue_that_cannot_be_opened_does_not_stop_the_queue(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """An old clue queued unsigned whose content envelope is damaged (or sealed to a key rotated away): that
    clue is skipped and taken off, the clues queued with and behind it are still linked."""
    async with running_app(tmp_path, fresh_database_url) as harness:
        world = await make_world(harness)
        broken = await _submit(harness, world, "看守所民警收钱给在押人员传递纸条。")
        first = await _submit(harness, world, BASE)
        again = await _submit(harness, world, BASE + "希望尽快查处！")
        await _queued_unsigned(harness, broken)
        async with harness.runtime.session_factory() as session:
            sealed = await session.scalar(select(Clue.content).where(Clue.id == broken))
            await session.execute(
                update(Clue).where(Clue.id == broken).values(content=sealed[:-1] + bytes([sealed[-1] ^ 1]))
            )
            await session.commit()
        await classification_service.link_pending_near_duplicates(harness.runtime, chunk=10)
        assert frozenset((first, again)) in await _links(harness)
        signatures, _ = await _database_copy(harness)
        assert broken not in signatures and {first, again} <= set(signatures)
        async with harness.runtime.session_factory() as session:
            assert not (await session.execute(select(NearDuplicatePending.clue_id))).all()


async def test_new_clues_link_in_a_process_without_the_case_key(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """Intake signs while it holds the text: the task compares stored signatures and opens nothing, so a
    process holding public keys only links new clues (compartments: no standing master key)."""
    async with running_app(tmp_path, fresh_database_url) as harness:
        world = await make_world(harness)
        first = await _submit(harness, world, BASE)
        again = await _submit(harness, world, BASE + "！")
        async with harness.runtime.session_factory() as session:
            stored = dict(
                (
                    await session.execute(
                        select(NearDuplicatePending.clue_id, NearDuplicatePending.signature)
                    )
                ).all()
            )
        key = harness.runtime.lookup_key(dedup.KEY_LABEL)
        assert stored[first] == dedup.near_duplicate_signature(await _masked_text(harness, first), key=key)
        public_only = dataclasses.replace(
            harness.runtime, keys=KeyRing.from_public_documents(harness.runtime.keys.public_documents())
        )
        assert await classification_service.link_pending_near_duplicates(public_only) >= 1
        assert frozenset((first, again)) in await _links(harness)


async def test_a_process_without_the_case_key_fails_loudly_and_keeps_the_queue(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """Old clues queued unsigned need the case key: skipping them must not turn a deployment without it into
    one that silently takes them off the queue unlinked."""
    async with running_app(tmp_path, fresh_database_url) as harness:
        world = await make_world(harness)
        queued = {await _submit(harness, world, BASE), await _submit(harness, world, BASE + "！")}
        for clue_id in queued:
            await _queued_unsigned(harness, clue_id)
        public_only = dataclasses.replace(
            harness.runtime, keys=KeyRing.from_public_documents(harness.runtime.keys.public_documents())
        )
        with pytest.raises(RuntimeError, match="case private key"):
            await classification_service.link_pending_near_duplicates(public_only)
        async with harness.runtime.session_factory() as session:
            assert set((await session.execute(select(NearDuplicatePending.clue_id))).scalars()) >= queued
