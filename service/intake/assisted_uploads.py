"""Files staff attach to a clue they have just registered: a call's recording, a letter's scanned pages.

Invariants:
- Only the staff member who registered the clue may attach to it (checked against the audit trail before
  a byte is stored), and only to a clue of the right channel; anything else is the same 404.
- A recording identifies the caller by voice: its file key is wrapped with the IDENTITY key, and that
  envelope is kept inside the record of a ``call_recording`` addition (sealed like every addition). Staff
  see that a recording exists (kind, size, digest); only the custodial process can open it.
- Scanned pages go through the same pipeline as web uploads (sniff, strip metadata, encrypt, store) and
  become ordinary ``attachments`` rows, their file keys sealed to the clue's own key (compartments).
- The body is streamed into the pipeline; the size limit holds on the bytes received. A failure after the
  blob was stored deletes it.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments import service as attachments_service
from service.audit import service as audit_service
from service.audit.models import AuditEntry
from service.compartments import items as clue_items
from service.intake import assisted as hotline_service
from service.platform.blobs import BlobStore
from service.platform.errors import NotFound
from service.platform.runtime import Runtime
from service.registry.models import Clue

CALL_RECORDING = "call_recording"


async def own_clue(session: AsyncSession, *, clue_id: str, channel: str, actor: str) -> Clue:
    clue = await session.get(Clue, clue_id)
    registered_by = await session.scalar(
        select(AuditEntry.actor).where(
            AuditEntry.object_id == clue_id, AuditEntry.action == "clue.registered"
        )
    )
    if clue is None or clue.channel != channel or registered_by != actor:
        raise NotFound("线索不存在，或不是您登记的", message_en="no such clue registered by you")
    return clue


async def attach_recording(
    session: AsyncSession,
    *,
    runtime: Runtime,
    store: BlobStore,
    clue_id: str,
    chunks: AsyncIterable[bytes],
    actor: str,
) -> tuple[str, str]:
    """(addition id, blob id): the caller may need the blob to clean up, and its record is sealed to the
    clue's key, which the operator who registered the call need not hold."""
    await own_clue(session, clue_id=clue_id, channel="hotline", actor=actor)
    record = await attachments_service.store_upload(
        chunks,
        store=store,
        wrap=runtime.keys.seal_identity,
        max_size=runtime.settings.hotline_recording_max_bytes,
        allowed=("audio/",),
        scratch_dir=runtime.settings.attachment_scratch_dir,
    )
    try:
        row = await hotline_service._add(  # noqa: SLF001 - same package
            session,
            runtime=runtime,
            clue_id=clue_id,
            kind=CALL_RECORDING,
            content={
                "blob_id": record.blob_id,
                "kind": str(record.kind.value),
                "size": record.size,
                "sha256": record.sha256,
                "removed_metadata": list(record.removed_metadata),
                # HPKE envelope to the identity key: only the custodial process can open the recording.
                "identity_wrapped_key": base64.b64encode(record.wrapped_key).decode("ascii"),
            },
            actor=actor,
            reporter_code=None,
            audit_action="clue.recording_added",
            audit_details={"blob_id": record.blob_id, "size": record.size},
            for_reporter=False,
        )
    except BaseException:
        await store.delete(record.blob_id)
        raise
    return row.id, record.blob_id


async def attach_letter_page(
    session: AsyncSession,
    *,
    runtime: Runtime,
    store: BlobStore,
    clue_id: str,
    chunks: AsyncIterable[bytes],
    actor: str,
) -> str:
    await own_clue(session, clue_id=clue_id, channel="letter", actor=actor)
    record = await attachments_service.store_upload(
        chunks,
        store=store,
        wrap=await clue_items.sealer(session, clue_id=clue_id, keys=runtime.keys),
        max_size=runtime.settings.letter_page_max_bytes,
        allowed=("image/", "application/pdf"),
        wrap_sealed=runtime.keys.seal_identity,
        scratch_dir=runtime.settings.attachment_scratch_dir,
    )
    try:
        rows = await attachments_service.add_attachments(
            session,
            clue_id=clue_id,
            message_id=None,
            files=[attachments_service.UploadedFile(record=record)],
            keys=runtime.keys,
            actor=actor,
        )
    except BaseException:
        await store.delete(record.blob_id)
        raise
    await audit_service.record(
        session,
        actor=actor,
        action="letter.page_scanned",
        object_type="clue",
        object_id=clue_id,
        details={"attachment_id": rows[0].id},
    )
    return rows[0].id
