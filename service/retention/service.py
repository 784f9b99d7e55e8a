"""Retention per status, legal holds, and the purge.

A clue whose status has a retention period (``TIPLINE_RETENTION_DAYS``, e.g. ``{"concluded": 1825}``) and
that entered that status longer ago is purged, unless a legal hold is on it. The purge is crypto-shredding
plus deletion:

1. Attachments: the rows holding the wrapped per-file keys go first (committed), then the encrypted files.
   Without its key a file is noise even where a copy survives (a backup, a disk block).
   A compartmented clue's content-key wraps go with them: whatever is sealed under or to its key is noise
   once they are gone.
2. Envelopes (content, accused, classification, identity, contact fields, messages, notes, receipts,
   reporter keys…): the rows are deleted (every table refers to ``clues`` with ON DELETE CASCADE); sealed
   raw mail that produced the clue is cleared. SQLite runs with ``secure_delete`` so freed pages are
   zeroed; PostgreSQL's dead tuples are reclaimed by (auto)vacuum and never appear in a dump.
3. One audit entry ``clue.purged`` with ids and counts only.

Old backups still hold the envelopes: see docs/security.md ("Backups and retention").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import column, delete, func, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments.models import Attachment
from service.audit import service as audit_service
from service.auth.service import Principal
from service.compartments import items
from service.compartments.models import ClueKeyWrap
from service.mailbox.models import ReceivedMail
from service.messages.models import Message
from service.platform.blobs import LocalBlobStore
from service.platform.crypto.keys import KeyRing
from service.platform.errors import NotFound
from service.platform.timeutil import as_utc, utcnow
from service.redaction.models import Redaction
from service.registry.models import Clue, ClueState
from service.retention.models import LegalHold

log = logging.getLogger("tipline.retention")


@dataclass(frozen=True)
class HoldView:
    clue_id: str
    held: bool
    set_by: str | None = None
    set_at: datetime | None = None


async def _clue(session: AsyncSession, clue_id: str) -> Clue:
    clue = await session.get(Clue, clue_id) if len(clue_id) <= 36 else None
    if clue is None:
        raise NotFound("没有这条线索", message_en="no such clue")
    return clue


async def get_hold(session: AsyncSession, *, clue_id: str) -> HoldView:
    await _clue(session, clue_id)
    hold = await session.get(LegalHold, clue_id)
    if hold is None:
        return HoldView(clue_id, False)
    return HoldView(clue_id, True, hold.set_by, hold.set_at)


async def set_hold(
    session: AsyncSession, *, clue_id: str, held: bool, reason: str, principal: Principal, keys: KeyRing
) -> HoldView:
    """Put on or lift a legal hold (supervisors). Audited; the reason is sealed, the entry holds ids only."""
    await _clue(session, clue_id)
    hold = await session.get(LegalHold, clue_id)
    if held and hold is None:
        hold = LegalHold(
            clue_id=clue_id,
            set_by=principal.staff_id,
            set_at=utcnow(),
            # To the clue's own key where it has one (compartments), else the case key.
            reason=await session.run_sync(
                lambda s: items.seal_item(
                    s, keys, clue_id=clue_id, data=reason.encode(), binding=f"legal_holds/{clue_id}/reason"
                )
            ),
        )
        session.add(hold)
    elif not held and hold is not None:
        await session.delete(hold)
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.legal_hold_set" if held else "clue.legal_hold_lifted",
        object_type="clue",
        object_id=clue_id,
    )
    return await get_hold(session, clue_id=clue_id)


def _since(clue: Clue, state: ClueState | None) -> datetime:
    """When the clue entered its current status (the retention clock starts there)."""
    moments = [clue.registered_at]
    if state is not None:
        moments += [m for m in (state.stage_started_at, state.concluded_at) if m is not None]
    return max(as_utc(m) for m in moments)


async def expired_clue_ids(
    session: AsyncSession, *, retention_days: dict[str, int], now: datetime, limit: int = 100
) -> list[str]:
    if not retention_days:
        return []
    held = select(LegalHold.clue_id)
    rows = await session.execute(
        select(Clue, ClueState)
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .where(Clue.status.in_(list(retention_days)), ~Clue.id.in_(held))
        .order_by(Clue.registered_at)
    )
    expired = []
    for clue, state in rows.all():
        if _since(clue, state) + timedelta(days=retention_days[clue.status]) <= now:
            expired.append(clue.id)
            if len(expired) >= limit:
                break
    return expired


@dataclass
class Purged:
    clue_id: str
    blobs: list[str] = field(default_factory=list)  # to delete once the rows are committed
    attachments: int = 0
    messages: int = 0


async def purge_clue_rows(session: AsyncSession, *, clue_id: str, actor: str) -> Purged:
    """Delete the clue and every row that hangs off it, in the caller's transaction; returns the blob ids
    whose files to delete after the commit (the keys die with the rows, so the files go second)."""
    purged = Purged(clue_id)
    attachments = (await session.execute(select(Attachment).where(Attachment.clue_id == clue_id))).scalars()
    for attachment in attachments:
        purged.attachments += 1
        purged.blobs += [b for b in (attachment.blob_id, attachment.original_blob_id) if b]
    # The hand-off dossiers' kept ZIPs (handoff/models.py; named here by table: the two domains are
    # siblings): their keys go with the rows, their files with the clue's other blobs.
    dossiers = table("dossiers", column("clue_id"), column("blob_id"))
    purged.blobs += [
        b
        for b in (
            await session.scalars(select(dossiers.c.blob_id).where(dossiers.c.clue_id == clue_id))
        ).all()
        if b
    ]
    redacted = await session.execute(
        select(Redaction.blob_id).where(Redaction.clue_id == clue_id, Redaction.blob_id.is_not(None))
    )
    purged.blobs += [b for b in redacted.scalars() if b]  # redacted versions of the files
    purged.messages = (
        await session.scalar(select(func.count()).select_from(Message).where(Message.clue_id == clue_id))
    ) or 0
    # Wrapped keys first (explicitly: they are what makes the files and sealed items readable): the clue's
    # content key wraps (compartments: every item sealed to the clue's key is noise without them), the
    # files' keys, then everything else.
    await session.execute(delete(ClueKeyWrap).where(ClueKeyWrap.clue_id == clue_id))
    await session.execute(delete(Attachment).where(Attachment.clue_id == clue_id))
    await session.execute(delete(Redaction).where(Redaction.clue_id == clue_id))

    await session.execute(update(ReceivedMail).where(ReceivedMail.clue_id == clue_id).values(sealed=None))
    await session.execute(delete(Clue).where(Clue.id == clue_id))
    await audit_service.record(
        session,
        actor=actor,
        action="clue.purged",
        object_type="clue",
        object_id=clue_id,
        details={"attachments": purged.attachments, "messages": purged.messages, "blobs": len(purged.blobs)},
    )
    return purged


async def delete_blobs(roots: list[Path], blob_ids: list[str]) -> int:

    deleted = 0
    for root in roots:
        store = LocalBlobStore(root)
        for blob_id in blob_ids:
            if await store.exists(blob_id):
                await store.delete(blob_id)
                deleted += 1
    return deleted


__all__ = [
    "HoldView",
    "Purged",
    "delete_blobs",
    "expired_clue_ids",
    "get_hold",
    "purge_clue_rows",
    "set_hold",
]
