"""The outbox: queue outbound mail in the caller's transaction; the worker sends it (``tasks.py``).

Intake never waits for a relay: queuing is two inserts (the outbox row and its job) that commit with the
tip. Sending happens later, retried with backoff by the job worker; a relay that is down delays mail and
never blocks or fails intake.

Staff notifications say only that there is something to look at and where (a link): never a registry
number, category, name or any report text. A staff member may take them one by one or as a daily digest.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.auth.models import StaffRole
from service.jobs import service as jobs_service
from service.notify import keys as outbound_keys
from service.notify.models import (
    ACK,
    DAILY,
    DIGEST,
    DIGESTED,
    FAILED,
    HELD,
    MODES,
    OFF,
    PENDING,
    SENT,
    STAFF,
    NotificationPreference,
    OutboxMessage,
    sealed_binding,
)
from service.notify.sender import Sender
from service.platform.db import new_id
from service.platform.errors import Invalid
from service.platform.runtime import Configured
from service.platform.timeutil import utcnow

SEND_TASK = "notify.send"
SEND_ATTEMPTS = 8  # 10 s, 20 s, 40 s … about 21 minutes of retries before giving up
GIVE_UP_AFTER = timedelta(days=3)  # a pending acknowledgement older than this is destroyed unsent

# Fixed, content-free wording per event.
EVENTS = {
    "new_clue": ("有新线索待查看", "A new clue is waiting"),
    "clue_assigned": ("有线索分派给您", "A clue was assigned to you"),
    "new_message": ("线索有新消息", "A clue has a new message"),
    "deadline_near": ("有线索临近办理期限", "A clue is nearing its deadline"),
    "mail_quarantined": ("有无法解析的邮件待处理", "An unreadable mail is waiting in quarantine"),
}


def relay_configured(runtime: Configured) -> bool:
    return bool(runtime.settings.relay_host)


async def _queue(session: AsyncSession, row: OutboxMessage) -> None:
    session.add(row)
    await session.flush()
    if row.status == PENDING:
        await jobs_service.enqueue(
            session, task=SEND_TASK, payload={"outbox_id": row.id}, max_attempts=SEND_ATTEMPTS
        )


async def queue_acknowledgement(
    session: AsyncSession, *, runtime: Configured, to_address: str, receipt: str
) -> str | None:
    """Queue the receipt-code acknowledgement to a mail reporter. The address and the code are sealed to the
    outbound key at once; nothing else keeps them. Returns the outbox id, or None when switched off."""
    settings = runtime.settings
    if not (settings.relay_host and settings.mail_acknowledge and to_address and "@" in to_address):
        return None
    outbox_id = new_id()
    plaintext = json.dumps({"to": to_address, "receipt": receipt}, ensure_ascii=False).encode()
    sealed = outbound_keys.public_key(settings).seal(plaintext, sealed_binding(outbox_id))
    await _queue(
        session,
        OutboxMessage(id=outbox_id, kind=ACK, status=PENDING, sealed=sealed, created_at=utcnow()),
    )
    return outbox_id


async def notify_staff(
    session: AsyncSession, *, runtime: Configured, staff_ids: list[str], event: str, path: str
) -> int:
    """Tell these staff members that something waits at ``path``; content-free. Returns how many were
    queued or held (staff without a preference, or with ``off``, hear nothing)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    if not staff_ids or not relay_configured(runtime):
        return 0
    preferences = (
        await session.execute(
            select(NotificationPreference).where(
                NotificationPreference.staff_id.in_(staff_ids), NotificationPreference.mode != OFF
            )
        )
    ).scalars()
    count = 0
    now = utcnow()
    for preference in preferences:
        status = HELD if preference.mode == DAILY else PENDING
        await _queue(
            session,
            OutboxMessage(
                id=new_id(),
                kind=STAFF,
                status=status,
                staff_id=preference.staff_id,
                event=event,
                path=path[:200],
                created_at=now,
            ),
        )
        count += 1
    return count


async def notify_supervisors(session: AsyncSession, *, runtime: Configured, event: str, path: str) -> int:
    if not relay_configured(runtime):
        return 0
    ids = (
        await session.execute(
            select(StaffRole.staff_id)
            .join(NotificationPreference, NotificationPreference.staff_id == StaffRole.staff_id)
            .where(StaffRole.role == "supervisor")
        )
    ).scalars()
    return await notify_staff(session, runtime=runtime, staff_ids=list(ids), event=event, path=path)


async def set_preference(
    session: AsyncSession, *, staff_id: str, address: str, mode: str, actor: str
) -> NotificationPreference:
    address = (address or "").strip()
    if mode not in MODES:
        raise Invalid("通知方式无效", message_en="mode must be immediate, daily or off")
    if mode != OFF and ("@" not in address or len(address) > 254 or any(c.isspace() for c in address)):
        raise Invalid("请填写有效的邮箱地址", message_en="a valid email address is required")
    row = await session.get(NotificationPreference, staff_id)
    if row is None:
        row = NotificationPreference(staff_id=staff_id, address=address, mode=mode, updated_at=utcnow())
        session.add(row)
    else:
        row.address, row.mode, row.updated_at = address, mode, utcnow()
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="notify.preference_set",
        object_type="staff",
        object_id=staff_id,
        details={"mode": mode},
    )
    return row


async def get_preference(session: AsyncSession, *, staff_id: str) -> NotificationPreference | None:
    return await session.get(NotificationPreference, staff_id)


# --- Sending (the worker) ---------------------------------------------------------------------------


def _message(runtime: Configured, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = runtime.settings.relay_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=runtime.settings.relay_from.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-reply loops with our own receiver
    message.set_content(body)
    return message


def _staff_text(runtime: Configured, events: Counter[str], path: str | None) -> tuple[str, str]:
    base = runtime.settings.staff_link_base.rstrip("/")
    lines = []
    for event, count in sorted(events.items()):
        zh, en = EVENTS.get(event, ("有待办事项", "Something is waiting"))
        lines.append(f"{zh}（{count}）/ {en} ({count})")
    link = f"{base}{path}" if path else f"{base}/staff"
    body = "\n".join(lines) + f"\n\n请登录查看 / Sign in to look: {link}\n"
    return "Tipline：有待办事项 / Something to look at", body


async def deliver(
    session: AsyncSession, *, runtime: Configured, outbox_id: str, sender: Sender, final_attempt: bool
) -> str:
    """Send one outbox message. Raises on a relay failure (the job retries) unless this is the final
    attempt, when an acknowledgement's sealed address is destroyed and the row marked failed."""
    row = await session.get(OutboxMessage, outbox_id)
    if row is None or row.status != PENDING:
        return "skipped"
    row.attempts += 1
    try:
        if row.kind == ACK:
            if row.sealed is None:
                row.status = FAILED
                return FAILED
            ring = outbound_keys.opener(runtime.settings, runtime.keys)
            data = json.loads(ring.open(row.sealed, sealed_binding(row.id)))
            settings = runtime.settings
            body = settings.mail_ack_body.replace("{receipt}", data["receipt"])
            message = _message(runtime, data["to"], settings.mail_ack_subject, body)
            del data
        else:
            preference = await session.get(NotificationPreference, row.staff_id) if row.staff_id else None
            if preference is None or preference.mode == OFF:
                row.status = FAILED
                row.last_error = "NoPreference"
                return FAILED
            if row.kind == DIGEST:  # ``path`` holds the counts per event; the link is the staff home
                subject, body = _staff_text(runtime, Counter(json.loads(row.path)), None)
            else:
                subject, body = _staff_text(runtime, Counter({row.event: 1}), row.path or None)
            message = _message(runtime, preference.address, subject, body)
        await sender.send(message)
    except Exception as exc:
        row.last_error = type(exc).__name__[:64]
        if not final_attempt:
            raise
        row.status, row.sealed = FAILED, None
        await session.flush()
        return FAILED
    row.status, row.sealed, row.sent_at, row.last_error = SENT, None, utcnow(), None
    await session.flush()
    return SENT


async def build_digests(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Fold each daily-digest staff member's held notices into one message. Returns digests queued."""
    now = now or utcnow()
    held = (
        await session.execute(
            select(OutboxMessage.staff_id, OutboxMessage.event).where(
                OutboxMessage.status == HELD, OutboxMessage.created_at <= now
            )
        )
    ).all()
    per_staff: dict[str, Counter[str]] = {}
    for staff_id, event in held:
        per_staff.setdefault(staff_id, Counter())[event] += 1
    for staff_id, counts in per_staff.items():
        await _queue(
            session,
            OutboxMessage(
                id=new_id(),
                kind=DIGEST,
                status=PENDING,
                staff_id=staff_id,
                event="digest",
                path=json.dumps(dict(counts), separators=(",", ":"))[:200],
                created_at=now,
            ),
        )
    if per_staff:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == HELD, OutboxMessage.created_at <= now)
            .values(status=DIGESTED)
        )
    return len(per_staff)


async def expire_unsent(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Destroy sealed addresses of acknowledgements that could not be sent in time (belt and braces:
    the send task destroys them on its last attempt already)."""
    cutoff = (now or utcnow()) - GIVE_UP_AFTER
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == PENDING, OutboxMessage.created_at < cutoff)
        .values(status=FAILED, sealed=None, last_error="Expired")
    )
    return result.rowcount or 0
