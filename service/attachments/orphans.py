"""Deleting blobs that no row refers to.

A channel writes an attachment's ciphertext (and fsyncs it) *before* the transaction that records it
commits, so that a committed row never points at a missing file. A process that dies between the two —
or a commit whose outcome was unknown and that did not happen — leaves a blob that nothing refers to. The
``attachments.sweep_orphans`` task (``tasks.py``) deletes such blobs.

Invariant: a blob is deleted only when it is older than ``ORPHAN_MIN_AGE`` *and* nothing names it: no
``attachments`` row (as ``blob_id`` or ``original_blob_id``) and no audit entry whose details carry it as
``blob_id`` — that is how a blob referenced from inside a sealed record is found (the hotline's call
recordings: their ``clue_additions`` content is sealed, their ``clue.recording_added`` entry is not). **A
new kind of record that keeps a blob id anywhere else must audit it as ``details.blob_id`` or be added to
``referenced``, or its blobs will be deleted.** The age is counted from the blob's last write, which
ends just before its transaction starts; the threshold is far above any request, SMTP session (120 s) or
batch commit, so a blob whose transaction may still be in flight is never a candidate. Nothing is logged
but counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments.models import Attachment
from service.audit.models import AuditEntry
from service.platform.blobs import LocalBlobStore

ORPHAN_MIN_AGE = timedelta(hours=1)
_CHUNK = 500  # ids per reference query (well under any bind-parameter limit)


def blob_roots(runtime) -> list[Path]:  # type: ignore[no-untyped-def]
    """Every directory blobs may be in: the store (``Settings.blob_dir``) and ``<data_dir>/blobs``, where
    staff uploads went before they followed ``TIPLINE_WEB_BLOB_DIR`` too."""
    default = Path(runtime.settings.data_dir) / "blobs"
    return list(dict.fromkeys([runtime.settings.blob_dir, default]))


async def referenced(session: AsyncSession, blob_ids: Iterable[str]) -> set[str]:
    """Which of these blob ids something refers to (see the module docstring)."""
    ids = list(blob_ids)
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = await session.execute(
            select(Attachment.blob_id, Attachment.original_blob_id).where(
                or_(Attachment.blob_id.in_(chunk), Attachment.original_blob_id.in_(chunk))
            )
        )
        for blob_id, original in rows:
            found.update(x for x in (blob_id, original) if x)
    if set(ids) - found:
        found |= set(ids) & await _audited_blob_ids(session)
    return found


async def _audited_blob_ids(session: AsyncSession) -> set[str]:
    """Blob ids that audit entries carry as ``details.blob_id`` (details are canonical JSON text)."""
    audited: set[str] = set()
    rows = await session.stream_scalars(
        select(AuditEntry.details).where(AuditEntry.details.like('%"blob_id"%'))
    )
    async for details in rows:
        try:
            value = json.loads(details).get("blob_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str):
            audited.add(value)
    return audited


async def sweep_orphans(
    session: AsyncSession, *, store: LocalBlobStore, now: datetime, min_age: timedelta = ORPHAN_MIN_AGE
) -> int:
    """Delete this store's unreferenced blobs (and abandoned temporary files) older than ``min_age``.
    Returns how many files were removed."""
    if min_age < timedelta(minutes=10):
        raise ValueError("the orphan age threshold must stay far above any transaction's duration")
    if not store.root.is_dir():
        return 0
    cutoff = (now - min_age).timestamp()
    candidates = await store.committed_before(cutoff)
    keep = await referenced(session, candidates)
    removed = 0
    for blob_id in candidates:
        if blob_id not in keep:
            await store.delete(blob_id)
            removed += 1
    return removed + await store.sweep_temporary(older_than=cutoff)
