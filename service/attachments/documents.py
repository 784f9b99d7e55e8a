"""Documents staff add to a clue while handling it (verification notes, statements, photos): streamed through
the attachment pipeline (type from the bytes, metadata removed, encrypted as it arrives, key sealed to the
clue's own key, or the case key for a clue sealed before compartments), listed and downloaded with the
clue's other attachments (``/api/v1/clues/{id}/attachments``), audited. Size cap:
``TIPLINE_LETTER_PAGE_MAX_BYTES`` (20 MB by default), the staff upload cap."""

from __future__ import annotations

from collections.abc import AsyncIterable

from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments import service as attachments_service
from service.auth.permissions import Action, is_allowed
from service.auth.service import Principal
from service.compartments import items as clue_items
from service.platform.blobs import BlobStore
from service.platform.errors import NotFound
from service.platform.runtime import Configured
from service.registry.service import get_visible_clue

ALLOWED = (
    "image/",
    "application/",
    "audio/",
    "video/",
    "text/",
)  # the pipeline's allow-list decides the rest


async def add_document(
    session: AsyncSession,
    *,
    runtime: Configured,
    store: BlobStore,
    clue_id: str,
    chunks: AsyncIterable[bytes],
    principal: Principal,
) -> str:
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    if clue.assignee_id != principal.staff_id and not is_allowed(principal.roles, Action.read_any_clue):
        raise NotFound("线索不存在", message_en="clue not found")
    record = await attachments_service.store_upload(
        chunks,
        store=store,
        wrap=await clue_items.sealer(session, clue_id=clue.id, keys=runtime.keys),
        max_size=runtime.settings.letter_page_max_bytes,
        allowed=ALLOWED,
        wrap_sealed=runtime.keys.seal_identity,
        scratch_dir=runtime.settings.attachment_scratch_dir,
    )
    try:
        (row,) = await attachments_service.add_attachments(
            session,
            clue_id=clue.id,
            message_id=None,
            files=[attachments_service.UploadedFile(record=record)],
            keys=runtime.keys,
            actor=principal.actor,
        )
    except BaseException:
        await store.delete(record.blob_id)
        raise
    return row.id  # add_attachments appended the audit entry
