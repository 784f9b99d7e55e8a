"""Staff-side operations on received mail: counts, the quarantine list, an audited read of a quarantined
or filtered message (its envelope, still sealed to the identity key), and the retention purge of filtered
mail."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.auth.permissions import Action, require
from service.auth.service import Principal
from service.mailbox.models import FILTERED, QUARANTINED, ReceivedMail, sealed_binding
from service.platform.errors import Invalid, NotFound
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
    session: AsyncSession, *, principal: Principal, outcome: str = QUARANTINED, limit: int = 100
) -> list[QuarantineItem]:
    """Quarantined messages (or, with ``outcome=FILTERED``, filtered ones still within their retention)
    without content (no audit entry: nothing of the message is shown)."""
    require(principal.roles, Action.list_mail_quarantine)
    if outcome not in (QUARANTINED, FILTERED):
        raise Invalid("只能列出隔离或过滤邮件", message_en="outcome must be quarantined or filtered")
    rows = await session.execute(
        select(ReceivedMail)
        .where(ReceivedMail.outcome == outcome, _kept())
        .order_by(ReceivedMail.received_at.desc(), ReceivedMail.id)
        .limit(limit)
    )
    return [QuarantineItem(r.id, r.received_at, r.size, r.reason, r.via) for r in rows.scalars()]


def _kept() -> ColumnElement[bool]:
    """Quarantined or filtered mail whose envelope is still kept: a filtered message only within its
    retention (the purge destroys it then; until the purge has run it is refused all the same)."""
    return and_(
        ReceivedMail.sealed.is_not(None),
        or_(
            ReceivedMail.outcome == QUARANTINED,
            and_(ReceivedMail.outcome == FILTERED, ReceivedMail.expires_at > utcnow()),
        ),
    )


async def read_quarantined(session: AsyncSession, *, principal: Principal, mail_id: str) -> dict[str, str]:
    """A quarantined message's raw bytes, or a filtered message's masked subject and body within its
    retention window, still sealed to the identity key (no server process can open it): a custodian opens it
    on the custodial machine. The hand-over is recorded in the audit trail."""
    require(principal.roles, Action.read_mail_quarantine)
    row = await session.scalar(select(ReceivedMail).where(ReceivedMail.id == mail_id, _kept()))
    if row is None:
        raise NotFound(
            "没有这封隔离邮件，或过滤邮件已过保留期",
            message_en="no such quarantined mail, or the filtered mail is past its retention",
        )
    await audit_service.record(
        session,
        actor=principal.actor,
        action="mail.quarantine_read",
        object_type="mail",
        object_id=row.id,
        details={"size": row.size, "outcome": row.outcome},
    )
    return {
        "id": row.id,
        "outcome": row.outcome,
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
