"""The mailbox channel wired to the intake: real SMTP into the receiver, on both databases.

The receiver runs on the test's event loop with ``MailIngest`` against the harness's runtime, so each
outcome is checked through the staff API and the database."""

from __future__ import annotations

import asyncio
import base64
import json
import smtplib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from service.app.runtime import key_paths
from service.attachments.models import Attachment
from service.audit.models import AuditEntry
from service.mail.ingest import DUPLICATE, MailIngest, dedupe_key
from service.mail.parse import parse_message
from service.mail.receiver import RunningReceiver, TemporarilyUnavailable, serve_receiver
from service.mailbox import service as mail_service
from service.mailbox.models import ReceivedMail, sealed_binding
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import read_key_pair
from service.platform.timeutil import utcnow
from service.registry.models import Clue
from tests.helpers.app import auth, running_app, unique
from tests.helpers.conformance import conformance_files
from tests.helpers.database import PG_ADMIN_DSN
from tests.helpers.mail import PNG, TIP, mail, row_for, send


class Recording(MailIngest):
    """The real ingest, remembering the bytes as they arrived (SMTP turns bare LF into CRLF)."""

    received: list[bytes]

    async def __call__(self, raw: bytes) -> str:
        self.received.append(raw)
        return await super().__call__(raw)


@pytest_asyncio.fixture(loop_scope="session")
async def receiver(harness) -> AsyncIterator[RunningReceiver]:  # type: ignore[no-untyped-def]
    ingest = Recording(harness.runtime)
    ingest.received = []
    running = await serve_receiver("127.0.0.1", 0, ingest, [TIP], 4 * 1024 * 1024)
    running.received = ingest.received  # type: ignore[attr-defined]
    yield running
    await running.stop()


async def test_report_with_attachment_becomes_a_clue_seen_by_staff(harness, receiver) -> None:  # type: ignore[no-untyped-def]
    _, token = await harness.add_staff(unique("sup"), ["supervisor"])
    raw = mail("派出所民警刘某收受赌场老板红包，通风报信。", subject="举报保护伞", attachment=PNG)
    code, _ = await send(receiver.port, raw)
    assert code == 250
    row = await row_for(harness, raw)
    assert row is not None and row.outcome == "clue" and row.clue_id and row.attachments == 1
    detail = await harness.client.get(f"/api/v1/clues/{row.clue_id}", headers=auth(token))
    assert detail.status_code == 200
    body = detail.json()
    assert body["channel"] == "email" and "通风报信" in body["text"] and "举报保护伞" in body["text"]
    assert "sender." not in body["text"]
    async with harness.runtime.session_factory() as session:
        attachments = (
            await session.scalars(select(Attachment).where(Attachment.clue_id == row.clue_id))
        ).all()
        clue = await session.get(Clue, row.clue_id)
    assert [a.kind for a in attachments] == ["image/png"]
    assert clue is not None and clue.identity is not None  # the sender, sealed to the identity key


async def test_redelivery_makes_no_second_clue(harness, receiver) -> None:  # type: ignore[no-untyped-def]
    raw = mail("法院执行局某法官吃请收礼，压案不办。")
    assert (await send(receiver.port, raw))[0] == 250
    assert (await send(receiver.port, raw))[0] == 250  # the sender's retry after a lost 250

    def by_smtplib() -> None:  # and a third, by another client (blocking: on a thread)
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=30) as client:
            client.sendmail("s@example.cn", [TIP], raw)

    await asyncio.to_thread(by_smtplib)
    assert await MailIngest(harness.runtime)(raw) == DUPLICATE
    # Concurrent duplicates: only one may win.
    outcomes = await asyncio.gather(
        *(MailIngest(harness.runtime)(raw.replace(b"\xe5\x8e\x8b", b"\xe6\x8a\xbc")) for _ in range(4))
    )
    assert sorted(outcomes).count("clue") == 1 and outcomes.count(DUPLICATE) == 3
    key = dedupe_key(harness.runtime, parse_message(raw))
    async with harness.runtime.session_factory() as session:
        assert await session.scalar(select(func.count()).where(ReceivedMail.dedupe_key == key)) == 1


async def test_auto_reply_is_filtered_sealed_to_the_identity_key_counted_and_purged(
    harness, receiver
) -> None:  # type: ignore[no-untyped-def]
    _, sup = await harness.add_staff(unique("sup"), ["supervisor"])
    words = unique("我正在休假回来后回复您")
    raw = mail(words, subject="自动回复：休假中", headers="Auto-Submitted: auto-replied\r\n")
    assert (await send(receiver.port, raw))[0] == 250
    row = await row_for(harness, raw)
    assert row is not None and row.outcome == "filtered" and row.kind == "auto_reply"
    assert row.clue_id is None and row.sealed is not None and row.expires_at is not None
    # Sealed like quarantined mail: to the identity key, which no server process holds.
    assert Envelope.from_bytes(row.sealed).key_id == harness.runtime.keys.identity_public.key_id
    assert words.encode() not in row.sealed
    with pytest.raises(EnvelopeError):
        harness.runtime.keys.open(row.sealed, sealed_binding(row.id))

    # A supervisor finds it and fetches the envelope (audited); the identity key's holder opens it.
    listing = await harness.client.get("/api/v1/mail/quarantine?outcome=filtered", headers=auth(sup))
    assert listing.status_code == 200 and row.id in {i["id"] for i in listing.json()["items"]}
    assert row.id not in {
        i["id"]
        for i in (await harness.client.get("/api/v1/mail/quarantine", headers=auth(sup))).json()["items"]
    }
    read = await harness.client.post(f"/api/v1/mail/quarantine/{row.id}/read", headers=auth(sup))
    assert read.status_code == 200, read.text
    assert read.json()["outcome"] == "filtered" and read.json()["sealed_to"] == "identity"
    custodian = harness.runtime.keys.with_private(
        [read_key_pair(key_paths(harness.runtime.settings)["identity_private"])]
    )
    opened = json.loads(custodian.open(base64.b64decode(read.json()["envelope"]), read.json()["binding"]))
    assert opened["kind"] == "auto_reply" and words in opened["body"]

    async with harness.runtime.session_factory() as session:
        # Past its retention it is refused at once, before the purge has run.
        (await session.get(ReceivedMail, row.id)).expires_at = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
        await session.commit()
    late = await harness.client.post(f"/api/v1/mail/quarantine/{row.id}/read", headers=auth(sup))
    assert late.status_code == 404 and late.json()["error"]["message"]
    async with harness.runtime.session_factory() as session:
        await mail_service.purge_filtered(session, now=utcnow())
        await session.commit()
        assert (await session.get(ReceivedMail, row.id)).sealed is None  # type: ignore[union-attr]
        counts = await mail_service.counts(session)
    assert counts["filtered"]["auto_reply"] >= 1
    bad = await harness.client.get("/api/v1/mail/quarantine?outcome=clue", headers=auth(sup))
    assert bad.status_code == 422


async def test_unparseable_mail_is_quarantined_for_supervisors(harness, receiver) -> None:  # type: ignore[no-untyped-def]
    _, sup = await harness.add_staff(unique("sup"), ["supervisor"])
    _, inv = await harness.add_staff(unique("inv"), ["investigator"])
    junk = (bytes(range(1, 9)) + bytes(range(0x80, 0x100)))[:64]
    raw = b"From nobody Mon Jan  1 00:00:00 2024\r\n" + (junk + b"\r\n") * 60 + unique("x").encode() + b"\r\n"
    assert (await send(receiver.port, raw))[0] == 250
    row = await row_for(harness, raw)
    assert row is not None and row.outcome == "quarantined" and row.sealed is not None
    assert raw[:40] not in row.sealed
    listing = await harness.client.get("/api/v1/mail/quarantine", headers=auth(sup))
    assert listing.status_code == 200
    item = next(i for i in listing.json()["items"] if i["id"] == row.id)
    assert set(item) == {"id", "received_at", "size", "reason", "via"}
    assert listing.json()["counts"]["quarantined"]["unparseable"] >= 1
    assert (await harness.client.get("/api/v1/mail/quarantine", headers=auth(inv))).status_code == 403
    assert (
        await harness.client.post(f"/api/v1/mail/quarantine/{row.id}/read", headers=auth(inv))
    ).status_code == 403
    read = await harness.client.post(f"/api/v1/mail/quarantine/{row.id}/read", headers=auth(sup))
    assert read.status_code == 200 and read.json()["sealed_to"] == "identity"
    assert base64.b64decode(read.json()["envelope"]) == row.sealed
    async with harness.runtime.session_factory() as session:
        actions = (
            await session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == row.id))
        ).all()
    assert "mail.quarantine_read" in actions and "mail.quarantined" in actions
    missing = await harness.client.post("/api/v1/mail/quarantine/nope/read", headers=auth(sup))
    assert missing.status_code == 404 and missing.json()["error"]["message_en"]


async def test_every_conformance_message_has_one_outcome_or_a_rejection(harness, receiver) -> None:  # type: ignore[no-untyped-def]
    files = conformance_files()
    assert len(files) >= 17
    for path in files:
        raw = path.read_bytes()
        before = len(receiver.received)
        code, message = await send(receiver.port, raw)
        arrived = receiver.received[before:]
        row = await row_for(harness, arrived[0]) if arrived else None
        if code == 250:
            assert row is not None and row.outcome in {"clue", "filtered", "quarantined"}, path.name
            assert (row.clue_id is not None) == (row.outcome == "clue"), path.name
        else:
            assert code == 554 and row is None, (path.name, code, message)


async def test_database_unavailable_answers_451_then_accepts(backend, tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    """The database away: the receiver answers 451 (the sender keeps the message and retries) and nothing
    is stored; the database back, the retry is accepted and registered. SQLite: a database file that cannot
    be opened; PostgreSQL: connections refused and the open ones ended."""
    async with running_app(tmp_path, fresh_database_url) as h:
        if backend == "sqlite":
            await _unavailable_then_back_on_sqlite(h, tmp_path)
        else:
            await _unavailable_then_back_on_postgresql(h, fresh_database_url)


async def _unavailable_then_back_on_sqlite(h, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from service.platform.db import create_engine, create_session_factory

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/none.db")
    broken = replace(h.runtime, engine=engine, session_factory=create_session_factory(engine))
    raw = mail("看守所所长收钱。")
    running = await serve_receiver("127.0.0.1", 0, MailIngest(broken), [TIP], 1024 * 1024)
    try:
        with pytest.raises(TemporarilyUnavailable):
            await MailIngest(broken)(raw)
        assert (await send(running.port, raw))[0] == 451
    finally:
        await running.stop()
        await engine.dispose()
    assert await row_for(h, raw) is None
    running = await serve_receiver("127.0.0.1", 0, MailIngest(h.runtime), [TIP], 1024 * 1024)
    try:
        assert (await send(running.port, raw))[0] == 250  # the sender's retry
    finally:
        await running.stop()
    assert (await row_for(h, raw)).outcome == "clue"  # type: ignore[union-attr]


async def _unavailable_then_back_on_postgresql(h, database_url: str) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    name = database_url.rsplit("/", 1)[1]
    running = await serve_receiver("127.0.0.1", 0, MailIngest(h.runtime), [TIP], 1024 * 1024)
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        raw = mail("监狱管理人员收钱办理假释。")
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        assert (await send(running.port, raw))[0] == 451
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert await row_for(h, raw) is None
        assert (await send(running.port, raw))[0] == 250  # the sender's retry
        assert (await row_for(h, raw)).outcome == "clue"  # type: ignore[union-attr]
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await running.stop()


async def test_a_duplicate_in_a_shared_commit_fails_alone(harness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from service.intake.batching import IntakeBatcher

    sizes: list[int] = []
    commit = IntakeBatcher._commit

    async def recording(self, batch):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        return await commit(self, batch)

    monkeypatch.setattr(IntakeBatcher, "_commit", recording)
    runtime = harness.runtime
    fresh = [mail(f"第{i}封：法院执行局法官收受财物。", attachment=PNG if i % 2 else None) for i in range(6)]
    assert await MailIngest(runtime)(fresh[2]) == "clue"  # received before
    sizes.clear()
    outcomes = await asyncio.gather(*(MailIngest(runtime)(raw) for raw in [*fresh, fresh[5]]))
    assert max(sizes) >= 2, sizes  # they did share a transaction, which failed and was retried one by one
    assert outcomes[2] == DUPLICATE
    assert sorted([outcomes[5], outcomes[6]]) == ["clue", DUPLICATE]
    assert [outcomes[i] for i in (0, 1, 3, 4)] == ["clue"] * 4
    clue_ids = set()
    for raw in fresh:
        row = await row_for(harness, raw)
        assert row is not None and row.outcome == "clue" and row.clue_id
        clue_ids.add(row.clue_id)
    assert len(clue_ids) == 6
    async with runtime.session_factory() as session:
        attached = (
            await session.scalars(select(Attachment.clue_id).where(Attachment.clue_id.in_(clue_ids)))
        ).all()
        audited = (
            await session.scalars(
                select(AuditEntry.object_id).where(
                    AuditEntry.action == "clue.attachments_added", AuditEntry.object_id.in_(clue_ids)
                )
            )
        ).all()
    assert len(attached) == 3 and sorted(attached) == sorted(audited)
