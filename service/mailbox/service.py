"""Staff-side operations on received mail: counts, the quarantine list, an audited quarantine read,
and the retention purge of filtered mail."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.auth.permissions import Action, require
from service.auth.service import Principal
from service.mailbox.models import FILTERED, QUARANTINED, ReceivedMail, sealed_binding
from service.platform.errors import NotFound
from service.platform.timeutil import utcnow


@dataclass(frozen=True)
class QuarantineItem:
    id: str
    received_at: datetime
    size: int
    reason: str
    via: str


async def counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    rows = await session.execute(
        select(ReceivedMail.outcome, ReceivedMail.kind, func.count()).group_by(
            ReceivedMail.outcome, ReceivedMail.kind
        )
    )
    result: dict[str, dict[str, int]] = {}
    for outcome, kind, count in rows.all():
        result.setdefault(outcome, {})[kind] = count
    return result


async def list_quarantine(
    session: AsyncSession, *, principal: Principal, limit: int = 100
) -> list[QuarantineItem]:
    """Quarantined messages without content (no audit entry: nothing of the message is shown)."""
    require(principal.roles, Action.list_mail_quarantine)
    rows = await session.execute(
        select(ReceivedMail)
        .where(ReceivedMail.outcome == QUARANTINED)
        .order_by(ReceivedMail.received_at.desc(), ReceivedMail.id)
        .limit(limit)
    )
    return [QuarantineItem(r.id, r.received_at, r.size, r.reason, r.via) for r in rows.scalars()]


async def read_quarantined(session: AsyncSession, *, principal: Principal, mail_id: str) -> dict[str, str]:
    """The raw message, still sealed to the identity key (no server process can open it): a custodian
    opens it on the custodial machine. The hand-over is recorded in the audit trail."""
    require(principal.roles, Action.read_mail_quarantine)
    row = await session.get(ReceivedMail, mail_id)
    if row is None or row.outcome != QUARANTINED or row.sealed is None:
        raise NotFound("没有这封隔离邮件", message_en="no such quarantined mail")
    await audit_service.record(
        session,
        actor=principal.actor,
        action="mail.quarantine_read",
        object_type="mail",
        object_id=row.id,
        details={"size": row.size},
    )
    return {
        "id": row.id,
        "binding": sealed_binding(row.id),
        "sealed_to": "identity",
        "envelope": base64.b64encode(row.sealed).decode("ascii"),
    }


async def purge_filtered(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Destroy filtered mail whose retention ran out; the row stays for counts and deduplication."""
    result = await session.execute(
        update(ReceivedMail)
        .where(
            ReceivedMail.outcome == FILTERED,
            ReceivedMail.sealed.is_not(None),
            ReceivedMail.expires_at <= (now or utcnow()),
        )
        .values(sealed=None)
    )
    return result.rowcount or 0
