"""Signed checkpoints: an insider who rewrites the whole audit chain consistently (every hash recomputed, so
`audit verify` alone passes) is still caught by a checkpoint exported before; unusual reading raises a
content-free alert."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from service.audit import checkpoints
from service.audit.chain import GENESIS, LinkFields, canonical_json, entry_hash
from service.audit.models import AuditEntry, AuditHead
from service.platform.db import create_engine, create_session_factory
from service.platform.timeutil import utcnow
from tests.helpers.app import auth, cli_env, run_cli, running_app, unique
from tests.helpers.audit import drop_triggers, execute, fill


async def rewrite_whole_chain(url: str) -> None:
    """What an insider with the database would do: change one old entry, then recompute every hash after it
    and the heads, so the chain is internally consistent again."""
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            entries = (
                await session.execute(select(AuditEntry).order_by(AuditEntry.chain, AuditEntry.seq))
            ).scalars()
            prev: dict[int, str] = {}
            oldest = await session.scalar(select(func.min(AuditEntry.id)))
            for entry in entries:
                if entry.id == oldest:
                    entry.actor = "staff:someone-innocent"
                fields = LinkFields(
                    chain=entry.chain,
                    seq=entry.seq,
                    at=entry.at,
                    actor=entry.actor,
                    action=entry.action,
                    object_type=entry.object_type,
                    object_id=entry.object_id,
                    details=entry.details,
                    suite=entry.suite,
                    prev_hash=prev.get(entry.chain, GENESIS),
                )
                entry.prev_hash, entry.entry_hash = fields.prev_hash, entry_hash(fields)
                prev[entry.chain] = entry.entry_hash
            await session.flush()
            for chain, digest in prev.items():
                await session.execute(
                    update(AuditHead).where(AuditHead.chain == chain).values(entry_hash=digest)
                )
            await session.commit()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("suite", ["international", "national"])
async def test_consistent_rewrite_fails_against_exported_checkpoint(
    suite: str, backend: str, tmp_path: Path, fresh_database_url: str
) -> None:
    env = cli_env(tmp_path, fresh_database_url) | {"TIPLINE_CRYPTO_SUITE": suite}
    async with running_app(tmp_path, fresh_database_url, crypto_suite=suite) as harness:
        await fill(harness)
    out = tmp_path / "checkpoint.json"
    made = run_cli(["audit", "checkpoint", "--out", str(out)], env)
    assert made.returncode == 0, made.stderr
    document = json.loads(out.read_text())
    assert document["algorithm"] == ("sm2-sm3" if suite == "national" else "ed25519")
    ok = run_cli(["audit", "verify", "--checkpoint", str(out)], env)
    assert ok.returncode == 0, ok.stderr

    await execute(fresh_database_url, *drop_triggers(backend))
    await rewrite_whole_chain(fresh_database_url)
    plain = run_cli(["audit", "verify"], env)
    assert plain.returncode == 0, plain.stderr  # the rewrite is consistent: the chain alone cannot tell
    caught = run_cli(["audit", "verify", "--checkpoint", str(out)], env)
    assert caught.returncode == 1
    assert "history rewritten" in caught.stderr


async def test_altered_or_foreign_checkpoint_is_refused(tmp_path: Path, fresh_database_url: str) -> None:
    env = cli_env(tmp_path, fresh_database_url)
    async with running_app(tmp_path, fresh_database_url) as harness:
        await fill(harness)
    out = tmp_path / "checkpoint.json"
    assert run_cli(["audit", "checkpoint", "--out", str(out)], env).returncode == 0
    document = json.loads(out.read_text())
    forged = dict(document, heads={c: [seq, "00" * 32] for c, (seq, _) in document["heads"].items()})
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    result = run_cli(["audit", "verify", "--checkpoint", str(tmp_path / "forged.json")], env)
    assert result.returncode == 1 and "signature does not verify" in result.stderr
    # Signed by a key this deployment does not trust.
    stranger = checkpoints.load_or_create_signing_key(tmp_path / "elsewhere", "international")
    engine = create_engine(fresh_database_url)
    try:
        async with create_session_factory(engine)() as session:
            foreign = await checkpoints.create_checkpoint(session, key=stranger)
            await session.rollback()
    finally:
        await engine.dispose()
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    result = run_cli(["audit", "verify", "--checkpoint", str(tmp_path / "foreign.json")], env)
    assert result.returncode == 1 and "not a trusted audit signing key" in result.stderr


async def test_unusual_reading_alert_is_content_free(harness) -> None:  # type: ignore[no-untyped-def]
    staff_id, supervisor = await harness.add_staff(unique("科长"), ["supervisor"])
    numbers = []
    for i in range(4):
        response = await harness.client.post("/api/v1/tips", json={"text": f"第{i}条：民警收红包后不立案。"})
        assert response.status_code == 201
        numbers.append(response.json()["registry_number"])
    listed = (
        await harness.client.get("/api/v1/clues", params={"limit": 200}, headers=auth(supervisor))
    ).json()
    # The four just filed: a shared database holds earlier tests' clues, registered before this supervisor
    # existed and so not wrapped to their key (compartments).
    for item in [i for i in listed["items"] if i["registry_number"] in numbers]:
        assert (
            await harness.client.get(f"/api/v1/clues/{item['id']}", headers=auth(supervisor))
        ).status_code == 200
    async with harness.runtime.session_factory() as session:
        found = await checkpoints.raise_reading_alerts(
            session, now=utcnow() + timedelta(seconds=1), period=timedelta(minutes=10), threshold=3
        )
        await session.commit()
        mine = [f for f in found if f.actor == f"staff:{staff_id}"]
        assert mine and mine[0].distinct_clues >= 4
        alert = (
            await session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "alert.unusual_reading", AuditEntry.object_id == staff_id
                )
            )
        ).scalar_one()
        details = json.loads(alert.details)
        assert set(details) == {"entries", "distinct_clues", "period_seconds", "threshold"}
        quiet = await checkpoints.unusual_reading(
            session, since=utcnow() - timedelta(minutes=10), threshold=10_000
        )
        assert quiet == []
    assert canonical_json(details)  # ids and counts only


async def test_entries_deleted_before_the_automatic_checkpoint_are_noticed(
    backend: str, tmp_path: Path, fresh_database_url: str
) -> None:
    """The periodic job writes a signed checkpoint file to a directory the database cannot touch; someone who
    then deletes the newest entries (and winds the chain head back, so the chain alone verifies) is caught
    by a plain `tipline audit verify`."""
    env = cli_env(tmp_path, fresh_database_url)
    directory = tmp_path / "audit-checkpoints"
    async with running_app(tmp_path, fresh_database_url) as harness:
        await fill(harness)
        settings = harness.runtime.settings
        assert settings.audit_checkpoint_minutes == 10  # the default interval
        key = checkpoints.load_or_create_signing_key(settings.effective_keys_dir, settings.crypto_suite)
        async with harness.runtime.session_factory() as session:
            now = utcnow()
            made = await checkpoints.take_checkpoint_if_due(
                session, key=key, directory=directory, every=timedelta(minutes=10), now=now
            )
            again = await checkpoints.take_checkpoint_if_due(
                session,
                key=key,
                directory=directory,
                every=timedelta(minutes=10),
                now=now + timedelta(minutes=5),
            )
            await session.commit()
    assert made is not None and made.parent == directory and again is None  # one per interval
    assert oct(made.stat().st_mode & 0o777) == "0o400" and oct(directory.stat().st_mode & 0o777) == "0o700"
    ok = run_cli(["audit", "verify"], env)
    assert ok.returncode == 0, ok.stderr
    assert made.name in ok.stdout

    # Truncate the busiest chain by three entries and make its head point at what is left.
    heads = json.loads(made.read_text())["heads"]
    chain, (seq, _) = max(heads.items(), key=lambda item: item[1][0])
    assert seq >= 2
    cut = max(seq - 2, 2)  # keep the chain's first entry: a head at seq 0 has no entry to point at
    await execute(fresh_database_url, *drop_triggers(backend))
    chain_no = int(chain)  # integers only in the statements below
    await execute(
        fresh_database_url,
        f"DELETE FROM audit_entries WHERE chain = {chain_no} AND seq >= {cut}",  # noqa: S608
        f"UPDATE audit_heads SET seq = {cut - 1}, entry_hash = (SELECT entry_hash FROM audit_entries "  # noqa: S608
        f"WHERE chain = {chain_no} AND seq = {cut - 1}) WHERE chain = {chain_no}",
    )
    caught = run_cli(["audit", "verify"], env)
    assert caught.returncode == 1
    assert f"chain {chain}: entry seq {seq} of the checkpoint is gone (history removed)" in caught.stderr


async def test_checkpoint_is_refused_without_a_configured_trusted_key(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """A checkpoint carries its own public key; that proves the file is whole, not who signed it. With no
    trusted key configured (`audit-signing*.public.json` in the keys directory), nothing is accepted."""
    env = cli_env(tmp_path, fresh_database_url)
    async with running_app(tmp_path, fresh_database_url) as harness:
        await fill(harness)
    out = tmp_path / "checkpoint.json"
    assert run_cli(["audit", "checkpoint", "--out", str(out)], env).returncode == 0
    for public in (tmp_path / "keys").glob("audit-signing*.public.json"):
        public.unlink()
    refused = run_cli(["audit", "verify", "--checkpoint", str(out)], env)
    assert refused.returncode == 1
    assert "no trusted audit signing key is configured" in refused.stderr
