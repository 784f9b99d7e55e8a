"""The orphan sweep: a blob that no row names is deleted once it is older than the threshold; a referenced
blob, a young unreferenced one (its transaction may still be in flight) and a young temporary file stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.attachments import orphans
from service.attachments.models import Attachment
from service.audit import service as audit_service
from service.jobs.registry import JobContext
from service.mail.ingest import MailIngest
from service.mailbox.models import ReceivedMail
from service.platform.blobs import LocalBlobStore, new_blob_id
from service.platform.timeutil import utcnow
from tests.helpers.mail import PNG, mail, row_for

OLD = time.time() - 3 * 3600


async def write_blob(store: LocalBlobStore, data: bytes = b"ciphertext") -> str:
    blob_id = new_blob_id()
    async with await store.open_writer(blob_id) as writer:
        await writer.write(data)
        await writer.commit()
    return blob_id


def age(store: LocalBlobStore, blob_id: str) -> None:
    path = store.root / blob_id[:2] / blob_id
    os.utime(path, (OLD, OLD))


async def test_old_unreferenced_blobs_go_and_everything_else_stays(harness) -> None:  # type: ignore[no-untyped-def]
    runtime = harness.runtime
    store = runtime.blobs
    raw = mail("看守所民警收受家属财物，违规传递物品。", attachment=PNG)
    assert await MailIngest(runtime, store=store)(raw) == "clue"
    row: ReceivedMail | None = await row_for(harness, raw)
    assert row is not None and row.clue_id
    async with runtime.session_factory() as session:
        kept = await session.scalar(select(Attachment.blob_id).where(Attachment.clue_id == row.clue_id))
    assert kept is not None
    age(store, kept)

    orphan = await write_blob(store)
    age(store, orphan)
    # A blob named only inside a sealed record (a call recording) is found through its audit entry.
    recording = await write_blob(store)
    age(store, recording)
    async with runtime.session_factory() as session:
        await audit_service.record(
            session,
            actor="staff:test",
            action="clue.recording_added",
            object_type="clue",
            object_id=row.clue_id,
            details={"blob_id": recording, "size": 10},
        )
        await session.commit()
    young = await write_blob(store)
    stale_part = store.root / ".tmp" / f"{new_blob_id()}.deadbeef.part"
    stale_part.write_bytes(b"half")
    os.utime(stale_part, (OLD, OLD))
    fresh_part = store.root / ".tmp" / f"{new_blob_id()}.cafebabe.part"
    fresh_part.write_bytes(b"being written")

    from service.attachments import tasks as attachment_tasks

    async with runtime.session_factory() as session:
        ctx = JobContext(session=session, runtime=runtime, job_id="t", attempt=1, scheduled_for=utcnow())
        await attachment_tasks.sweep_orphans(ctx, {})
        await session.commit()

    assert not await store.exists(orphan)
    assert await store.exists(kept) and await store.exists(young) and await store.exists(recording)
    assert not stale_part.exists() and fresh_part.exists()
    fresh_part.unlink()
    # The referenced blob is intact.
    assert (store.root / kept[:2] / kept).stat().st_size > 0


async def test_threshold_cannot_be_set_below_a_transaction_s_lifetime(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with harness.runtime.session_factory() as session:
        with pytest.raises(ValueError):
            await orphans.sweep_orphans(
                session, store=LocalBlobStore(tmp_path), now=utcnow(), min_age=timedelta(seconds=30)
            )
