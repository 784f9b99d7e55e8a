"""Clues that staff type in: hotline calls, letters, visits, and the three staff sources. Every one goes
through the one intake entry (``runtime.intake.submit``); this module only shapes the submission and adds
the operator's record in the registration's own transaction.

Invariants:
- A caller's number and name, a writer's or visitor's details, a confessing officer's identity go only
  into ``Submission.submitter`` (identity key). Call times and source particulars go into
  ``Submission.details`` (case key). Nothing here logs or audits content or identity.
- Whatever the caller said (the summary of the call, their own words, how to call them back, what they add
  later, a correction) staff read masked, like a web report's text; the originals are identity details.
- The hotline's "caller phones again" path is add-only: a code opens nothing for the operator; it only
  lets a note be appended to its clue, and the code is marked read aloud again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.audit.service import PUBLIC_ACTOR
from service.classification import classifier
from service.compartments import items as clue_items
from service.compartments.keys import Unlocked
from service.intake import assisted_schemas as schemas
from service.intake import service as intake_service
from service.intake.models import Receipt
from service.intake.receipts import MalformedReceipt, normalise_receipt, receipt_hash
from service.messages import reporter_key as rk
from service.messages import service as messages_service
from service.messages.models import ReporterKey
from service.platform.db import new_id
from service.platform.errors import Invalid, NotFound
from service.platform.runtime import Runtime
from service.platform.timeutil import LOCAL, utcnow
from service.registry.additions import ClueAddition
from service.registry.models import Clue

CALL_RECORD = "call_record"
OPERATOR_ADDITION = "operator_addition"
CALLER_CONFIRMATION = "caller_confirmation"
MAX_CORRECTION_CHARS = 5_000
FUTURE_SLACK = timedelta(minutes=10)


def addition_binding(addition_id: str) -> str:
    return f"clue_additions/{addition_id}/content"


def addition_identity_binding(addition_id: str) -> str:
    return f"clue_additions/{addition_id}/identity"


def reporter_copy_binding(addition_id: str) -> str:
    return f"clue_additions/{addition_id}/reporter"


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _plausible(day: date, field: str) -> None:
    """A date a person could mean: before 1900 or after 2200 is a typing error (and would overflow the
    conversions to UTC and the deadline arithmetic)."""
    if not 1900 <= day.year <= 2200:
        raise Invalid(f"{field} 日期不合理", message_en=f"{field} must be a date between 1900 and 2200")


def _not_in_future(moment: datetime | date, field: str) -> None:
    _plausible(moment.date() if isinstance(moment, datetime) else moment, field)
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise Invalid(f"{field} 需要带时区", message_en=f"{field} needs a time zone (e.g. +08:00)")
        late = moment > utcnow() + FUTURE_SLACK
    else:
        late = moment > datetime.now(LOCAL).date()
    if late:
        raise Invalid(f"{field} 不能晚于现在", message_en=f"{field} is in the future")


def end_of_local_day(day: date) -> datetime:
    """A deadline date means the end of that day in Asia/Shanghai."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=LOCAL)


def start_of_local_day(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=LOCAL)


def _clean(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v not in (None, "")}


# --- Hotline ----------------------------------------------------------------------------------------


def call_text(call: schemas.CallIn) -> str:
    """The report text: the operator's summary, then the caller's own words, marked as such."""
    if call.caller_words:
        return f"{call.summary}\n\n【来电人原话】\n{call.caller_words}"
    return call.summary


@dataclass(frozen=True)
class Registered:
    clue_id: str
    registry_number: str
    receipt: str


async def register_call(*, runtime: Runtime, call: schemas.CallIn, actor: str) -> Registered:
    _not_in_future(call.call_started_at, "call_started_at")
    submitter = _clean(
        {
            "phone": call.caller_number,
            "name": None if call.anonymous else call.caller_name,
            "callback_number": call.callback_number,
        }
    )
    details = {
        "call": {
            "started_at": call.call_started_at.isoformat(),
            "duration_seconds": call.duration_seconds,
            "callback_allowed": call.callback_allowed,
        }
    }
    # The operator's record, sealed also to the reporter key so the caller can read it back with the code:
    # written in the registration's own transaction.
    record = {
        "summary": call.summary,
        "caller_words": call.caller_words,
        "call_started_at": call.call_started_at.isoformat(),
        "duration_seconds": call.duration_seconds,
        "callback_allowed": call.callback_allowed,
        "callback_how": call.callback_how,
    }

    async def add_record(session: AsyncSession, submitted: intake_service.SubmittedTip) -> None:
        await _add(
            session,
            runtime=runtime,
            clue_id=submitted.clue_id,
            kind=CALL_RECORD,
            content=record,
            actor=actor,
            reporter_code=submitted.receipt,
            audit_action=None,
            reporter_written=("summary", "caller_words", "callback_how"),
        )

    submitted = await runtime.intake.submit(
        intake_service.Submission(
            text=call_text(call),
            channel="hotline",
            anonymous=call.anonymous,
            accused=call.accused.model_dump(),
            incident=call.incident.model_dump(),
            category_hint=call.category_hint,
            submitter=submitter,
            received_at=call.call_started_at,
            details=details,
            notes={"callback_how": call.callback_how} if call.callback_how else {},
        ),
        actor=actor,
        also=add_record,
    )
    return Registered(submitted.clue_id, submitted.registry_number, submitted.receipt)


async def _add(
    session: AsyncSession,
    *,
    runtime: Runtime,
    clue_id: str,
    kind: str,
    content: dict[str, Any],
    actor: str,
    reporter_code: str | None,
    audit_action: str | None,
    audit_details: dict[str, Any] | None = None,
    for_reporter: bool = True,
    reporter_written: tuple[str, ...] = (),
) -> ClueAddition:
    """Add to a clue. The fields named in ``reporter_written`` are the caller's words: staff read them masked
    (the originals go under the identity key); the caller's own copy keeps them as said."""
    addition_id = new_id()
    plaintext = _json(content)
    accused_names = await session.scalar(select(Clue.accused_names).where(Clue.id == clue_id))
    masked = classifier.mask_texts(
        {name: content.get(name) for name in reporter_written},
        accused=classifier.keyed_accused_names(
            accused_names, key=runtime.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL)
        ),
    )
    identity = (
        runtime.keys.seal_identity(_json(masked.originals), addition_identity_binding(addition_id))
        if masked.originals
        else None
    )
    reporter_copy = None
    if reporter_code is not None:
        key = await messages_service.ensure_reporter_key(session, clue_id=clue_id, code=reporter_code)
        reporter_copy = rk.seal_for_reporter(key.public_key, plaintext, reporter_copy_binding(addition_id))
    elif for_reporter:
        key_row = await session.get(ReporterKey, clue_id)
        if key_row is not None:
            reporter_copy = rk.seal_for_reporter(
                key_row.public_key, plaintext, reporter_copy_binding(addition_id)
            )
    seal = await clue_items.sealer(session, clue_id=clue_id, keys=runtime.keys)
    row = ClueAddition(
        id=addition_id,
        clue_id=clue_id,
        kind=kind,
        content=seal(_json({**content, **masked.texts}), addition_binding(addition_id)),
        reporter_copy=reporter_copy,
        identity=identity,
        created_at=utcnow(),
        created_by=actor,
    )
    session.add(row)
    await session.flush()
    if audit_action:
        await audit_service.record(
            session,
            actor=actor,
            action=audit_action,
            object_type="clue",
            object_id=clue_id,
            details={"addition_id": addition_id, "kind": kind, **(audit_details or {})},
        )
    return row


async def _clue_of_code(session: AsyncSession, *, runtime: Runtime, code_text: str) -> tuple[str, str]:
    """(clue id, normalised code) for a live code, else NotFound — the same for malformed and unknown."""
    wrong = NotFound("查询码无效，请让来电人再核对一遍", message_en="no live receipt with that code")
    try:
        code = normalise_receipt(code_text)
    except MalformedReceipt:
        raise wrong from None
    clue_id = await session.scalar(
        select(Receipt.clue_id).where(
            Receipt.code_hash == receipt_hash(runtime.lookup_key("receipt"), code),
            Receipt.revoked_at.is_(None),
        )
    )
    if clue_id is None:
        raise wrong
    return clue_id, code


async def add_to_clue_by_code(
    session: AsyncSession, *, runtime: Runtime, addition: schemas.AdditionIn, actor: str
) -> ClueAddition:
    """The caller phoned again with their code: append what they add. Returns nothing about the clue."""
    if addition.call_started_at is not None:
        _not_in_future(addition.call_started_at, "call_started_at")
    clue_id, code = await _clue_of_code(session, runtime=runtime, code_text=addition.receipt)
    content = {
        "text": addition.text,
        "call_started_at": addition.call_started_at.isoformat() if addition.call_started_at else None,
        "duration_seconds": addition.duration_seconds,
    }
    row = await _add(
        session,
        runtime=runtime,
        clue_id=clue_id,
        kind=OPERATOR_ADDITION,
        content=content,
        actor=actor,
        reporter_code=code,
        audit_action="clue.addition_added",
        audit_details={"channel": "hotline"},
        reporter_written=("text",),
    )
    await mark_read_aloud(session, clue_id=clue_id, actor=actor)
    return row


async def mark_read_aloud(session: AsyncSession, *, clue_id: str, actor: str) -> int:
    """Mark the clue's live receipt(s) as read aloud: the web side must replace such a code at its next
    use, so the operator who heard it keeps no working credential."""
    result = await session.execute(
        update(Receipt)
        .where(Receipt.clue_id == clue_id, Receipt.revoked_at.is_(None))
        .values(read_aloud=True)
    )
    marked = int(result.rowcount or 0)  # type: ignore[attr-defined]
    await audit_service.record(
        session,
        actor=actor,
        action="receipt.read_aloud",
        object_type="clue",
        object_id=clue_id,
        details={"receipts": marked},
    )
    return marked


async def record_caller_confirmation(
    session: AsyncSession,
    clue_id: str,
    confirmed: bool,
    correction: str | None,
    *,
    runtime: Runtime,
) -> ClueAddition:
    """The caller, on the status page with their code, confirms the operator's record or corrects it."""
    correction = (correction or "").strip() or None
    if not confirmed and not correction:
        raise Invalid("请写明需要更正的内容", message_en="a correction needs its text")
    if correction and len(correction) > MAX_CORRECTION_CHARS:
        raise Invalid(
            f"更正内容不能超过 {MAX_CORRECTION_CHARS} 字",
            message_en=f"at most {MAX_CORRECTION_CHARS} characters",
        )
    if correction and any(ord(ch) < 32 and ch not in "\n\r\t" for ch in correction):
        raise Invalid("更正内容含有无效字符", message_en="the correction contains control characters")
    return await _add(
        session,
        runtime=runtime,
        clue_id=clue_id,
        kind=CALLER_CONFIRMATION,
        content={"confirmed": confirmed, "correction": correction},
        actor=PUBLIC_ACTOR,
        reporter_code=None,
        audit_action="clue.caller_confirmed" if confirmed else "clue.caller_corrected",
        reporter_written=("correction",),
    )


@dataclass(frozen=True)
class AdditionView:
    id: str
    kind: str
    content: dict[str, Any]
    created_at: datetime


async def operator_record_for_caller(session: AsyncSession, clue_id: str, *, code: str) -> list[AdditionView]:
    """What the caller may read back with their (live, already checked) code: the operator's record of
    the call(s), later additions and their own confirmations — opened with the reporter key, so the
    internet-facing process needs no case private key. Items sealed before a reporter key existed are
    left out."""
    key = await messages_service.ensure_reporter_key(session, clue_id=clue_id, code=code)
    private = rk.unwrap(messages_service._wrapped(key), code, clue_id)  # noqa: SLF001
    rows = await session.execute(  # not the case-key content: the caller's side may not read it
        select(ClueAddition.id, ClueAddition.kind, ClueAddition.reporter_copy, ClueAddition.created_at)
        .where(ClueAddition.clue_id == clue_id, ClueAddition.reporter_copy.is_not(None))
        .order_by(ClueAddition.created_at, ClueAddition.id)
    )
    views = [
        AdditionView(
            r.id,
            r.kind,
            json.loads(rk.open_for_reporter(private, r.reporter_copy, reporter_copy_binding(r.id))),
            r.created_at,
        )
        for r in rows
        if r.reporter_copy is not None
    ]
    await audit_service.record(
        session,
        actor=PUBLIC_ACTOR,
        action="clue.record_shown_to_caller",
        object_type="clue",
        object_id=clue_id,
        details={"addition_ids": [v.id for v in views]},
    )
    return views


async def list_additions(
    session: AsyncSession, *, clue_id: str, runtime: Runtime, actor: str, unlocked: Unlocked | None
) -> list[AdditionView]:
    """Staff view (the caller must already have checked the clue is visible to them), opened with the
    requester's key to the clue (compartments; 403 without one). Audited read."""
    opener = await clue_items.opener(session, clue_id=clue_id, unlocked=unlocked, keys=runtime.keys)
    rows = (
        await session.execute(
            select(ClueAddition)
            .where(ClueAddition.clue_id == clue_id)
            .order_by(ClueAddition.created_at, ClueAddition.id)
        )
    ).scalars()
    views = [
        AdditionView(r.id, r.kind, json.loads(opener.open(r.content, addition_binding(r.id))), r.created_at)
        for r in rows
    ]
    await audit_service.record(
        session,
        actor=actor,
        action="clue.additions_read",
        object_type="clue",
        object_id=clue_id,
        details={"addition_ids": [v.id for v in views]},
    )
    return views


# --- Letters and visits ------------------------------------------------------------------------------


async def register_letter(*, runtime: Runtime, letter: schemas.LetterIn, actor: str) -> Registered:
    _not_in_future(letter.postmark_date, "postmark_date")
    received = letter.received_date or datetime.now(LOCAL).date()
    _not_in_future(received, "received_date")
    writer = letter.writer.model_dump()
    if letter.anonymous:
        writer.pop("name", None)
    submitted = await runtime.intake.submit(
        intake_service.Submission(
            text=letter.text,
            channel="letter",
            anonymous=letter.anonymous,
            accused=letter.accused.model_dump(),
            incident=letter.incident.model_dump(),
            category_hint=letter.category_hint,
            submitter=_clean(writer),
            received_at=start_of_local_day(received) if letter.received_date else None,
            details={
                "letter": {
                    "postmark_date": letter.postmark_date.isoformat(),
                    "received_date": received.isoformat(),
                    "page_count": letter.page_count,
                }
            },
        ),
        actor=actor,
    )
    return Registered(submitted.clue_id, submitted.registry_number, submitted.receipt)


async def register_visit(*, runtime: Runtime, visit: schemas.VisitIn, actor: str) -> Registered:
    _not_in_future(visit.visit_date, "visit_date")
    visitor = visit.visitor.model_dump()
    if visit.anonymous:
        visitor.pop("name", None)
    today = datetime.now(LOCAL).date()
    submitted = await runtime.intake.submit(
        intake_service.Submission(
            text=visit.text,
            channel="visit",
            anonymous=visit.anonymous,
            accused=visit.accused.model_dump(),
            incident=visit.incident.model_dump(),
            category_hint=visit.category_hint,
            submitter=_clean(visitor),
            received_at=None if visit.visit_date == today else start_of_local_day(visit.visit_date),
            details={"visit": {"visit_date": visit.visit_date.isoformat(), "received_by": visit.received_by}},
        ),
        actor=actor,
    )
    return Registered(submitted.clue_id, submitted.registry_number, submitted.receipt)


# --- Staff-entered sources ---------------------------------------------------------------------------

LENIENCY_POLICY = "自查从宽"


async def register_staff_source(
    *,
    runtime: Runtime,
    entry: schemas.SuperiorAssignedIn | schemas.SelfInspectionIn | schemas.VoluntaryConfessionIn,
    actor: str,
) -> Registered:
    due_at: datetime | None = None
    received_at: datetime | None = None
    submitter: dict[str, Any] = {}
    anonymous = True
    if isinstance(entry, schemas.SuperiorAssignedIn):
        _not_in_future(entry.received_date, "received_date")
        _plausible(entry.deadline, "deadline")
        accused = entry.accused.model_dump()
        received_at = start_of_local_day(entry.received_date)
        due_at = end_of_local_day(entry.deadline)
        details: dict[str, Any] = {
            "superior_assignment": {
                "assigning_body": entry.assigning_body,
                "document_number": entry.document_number,
                "received_date": entry.received_date.isoformat(),
                "deadline": entry.deadline.isoformat(),
            }
        }
    elif isinstance(entry, schemas.SelfInspectionIn):
        accused = entry.accused.model_dump()
        if entry.found_date:
            _not_in_future(entry.found_date, "found_date")
            received_at = start_of_local_day(entry.found_date)
        details = {
            "self_inspection": {
                "inspection": entry.inspection,
                "recorded_by": entry.recorded_by,
                "found_date": entry.found_date.isoformat() if entry.found_date else None,
            }
        }
    else:
        _not_in_future(entry.confession_date, "confession_date")
        officer = entry.officer
        # The officer's identity is the sensitive detail: all of it under the identity key. Only the unit
        # stays in the case-key accused record, for routing and recusal.
        submitter = _clean(officer.model_dump())
        accused = {"unit": officer.unit}
        anonymous = False
        received_at = start_of_local_day(entry.confession_date)
        details = {
            "voluntary_confession": {
                "confession_date": entry.confession_date.isoformat(),
                "received_by": entry.received_by,
            },
            "leniency_policy": LENIENCY_POLICY,
        }
    submitted = await runtime.intake.submit(
        intake_service.Submission(
            text=entry.text,
            channel="staff",
            source=entry.source,
            anonymous=anonymous,
            accused=accused,
            incident=entry.incident.model_dump(),
            category_hint=entry.category_hint,
            submitter=submitter,
            received_at=received_at,
            due_at=due_at,
            details=details,
        ),
        actor=actor,
    )
    return Registered(submitted.clue_id, submitted.registry_number, submitted.receipt)
