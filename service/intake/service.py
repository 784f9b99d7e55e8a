"""Preparing and registering a submission: validate, mask, classify, seal what identifies (``prepare_tip``,
CPU only), then number, register, issue a receipt and audit (``register_prepared``) — for a whole batch in
one transaction. Channels do not call this directly: they call the one intake entry, ``runtime.intake``
(``intake.pipeline``), which runs these in a worker process and the group commit.

Invariant: the submitter's details and the unmasked text leave this function only as identity-key
envelopes; the report content only under the clue's own content key (compartments). Nothing here logs
content or identity.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from service.classification import classifier
from service.classification import service as classification_service
from service.compartments import keys as compartment_keys
from service.custody import service as custody_service
from service.custody.models import ClueContact
from service.intake.models import Receipt
from service.intake.receipts import new_receipt_code, receipt_hash
from service.messages import reporter_key as reporter_keys
from service.messages.models import ReporterKey
from service.platform.db import execute_many, id_batch, new_id
from service.platform.errors import Invalid
from service.platform.runtime import Sealing
from service.platform.timeutil import hour_floor, utcnow
from service.registry import keyholders, recusal, search
from service.registry import service as registry_service
from service.registry.models import CHANNELS, NO_CASE_COPY, SOURCES

if TYPE_CHECKING:
    from service.platform.runtime import Runtime


@dataclass(frozen=True)
class Submission:
    """A report as any channel hands it over, before anything is stored."""

    text: str
    channel: str
    source: str = "public_report"
    anonymous: bool = True
    accused: dict[str, str | None] = field(default_factory=dict)
    incident: dict[str, str | None] = field(default_factory=dict)
    category_hint: str | None = None
    submitter: dict[str, Any] = field(default_factory=dict)  # identity: sealed with the identity key
    received_at: datetime | None = None
    due_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # channel- or source-specific, in the content
    # Further texts the reporter wrote (a caller's call-back instructions): masked like ``text``, staff read
    # them as the content's ``notes``, the originals go under the identity key.
    notes: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmittedTip:
    clue_id: str
    registry_number: str
    receipt: str  # the code: shown once to the reporter, never stored or logged


def binding(clue_id: str, field_name: str) -> str:
    return f"clues/{clue_id}/{field_name}"


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class PreparedTip:
    """A submission sealed and classified, ready to register: no database work has happened yet."""

    new: registry_service.NewClue
    receipt_code: str
    reporter_key: reporter_keys.WrappedReporterKey  # opens only with the receipt code: two-way messages
    contact: bytes | None  # a real-name reporter's contact fields, for the one-custodian feedback release
    read_aloud: bool
    actor: str
    compartment: compartment_keys.SealedClue  # the content key is dropped once registration has wrapped it


def _received_at(submission: Submission) -> datetime:
    received = submission.received_at or utcnow()
    return hour_floor(received) if submission.anonymous else received


def prepare_tip(runtime: Sealing, submission: Submission, *, actor: str) -> PreparedTip:
    """The CPU part of intake (validation, personal-data masking, classification, sealing), done before any
    transaction starts so that database locks are held only for the writes. Channels call it through
    ``runtime.intake`` (``intake.pipeline``), which runs it in a worker process."""
    if submission.source not in SOURCES or submission.channel not in CHANNELS:
        raise Invalid("来源或渠道无效", message_en="unknown source or channel")
    hint = submission.category_hint
    if hint is not None and hint not in classifier.current_taxonomy().category_ids:
        raise Invalid("所选问题类别不存在", message_en=f"unknown category_hint {hint!r}")

    # An anonymous report keeps no finer time than the hour it arrived in: not in its id, not in its times.
    clue_id = new_id(hour_only=submission.anonymous)
    keys = runtime.keys
    # Personal data the reporter wrote is a submitter detail: staff see it masked, the originals are sealed
    # with the identity key.
    masked = classifier.mask_texts(
        {"text": submission.text, **submission.notes}, accused=[submission.accused.get("name") or ""]
    )
    masked_text = masked.texts.pop("text") or ""
    result = classifier.classify(masked_text, category_hint=hint)

    identity: dict[str, Any] = {k: v for k, v in submission.submitter.items() if v}
    if "text" in masked.originals:
        identity["unmasked_text"] = masked.originals.pop("text")
    if masked.originals:
        identity["unmasked_notes"] = masked.originals
    content: dict[str, Any] = {
        "text": masked_text,
        "incident": submission.incident,
        "category_hint": hint,
        "details": submission.details,
    }
    if masked.texts:
        content["notes"] = masked.texts
    fields = {
        "content": _json(content),
        "accused": _json(submission.accused),
        "classification": _json(result.to_dict()),
    }
    # Under the clue's own content key only, wrapped to its readers at registration: no case-key copy, so
    # a staff server's files and the database together open none of it.
    compartment = compartment_keys.seal_clue(clue_id, keys.case_public.suite, fields)
    new = registry_service.NewClue(
        id=clue_id,
        source=submission.source,
        channel=submission.channel,
        real_name=not submission.anonymous,
        received_at=_received_at(submission),
        content=NO_CASE_COPY,
        accused=NO_CASE_COPY,
        classification=NO_CASE_COPY,
        identity=keys.seal_identity(_json(identity), binding(clue_id, "identity")) if identity else None,
        accused_key=search.accused_index(runtime, submission.accused),
        accused_names=classifier.accused_name_digests(
            [submission.accused.get("name") or ""], key=runtime.lookup_key(classifier.ACCUSED_NAME_KEY_LABEL)
        ),
        # Keyed derived data, so staff-side work needs no decryption: recusal's and near-duplicates'.
        accused_words=recusal.keyed_words(
            submission.accused, key=runtime.lookup_key(recusal.WORDS_KEY_LABEL)
        ),
        near_signature=classifier.near_duplicate_signature(
            masked_text, key=runtime.lookup_key(classifier.NEAR_DUPLICATE_KEY_LABEL)
        ),
        accused_unit_name=submission.accused.get("unit"),
        categories=tuple(result.labels),
        needs_triage=result.needs_triage,
        taxonomy_version=result.taxonomy_version,
        due_at=submission.due_at,
    )
    code = new_receipt_code()
    return PreparedTip(
        new=new,
        receipt_code=code,
        reporter_key=reporter_keys.new_reporter_key(code, clue_id),
        contact=None
        if submission.anonymous
        else custody_service.seal_contact(keys, clue_id=clue_id, submitter=submission.submitter),
        read_aloud=submission.channel == "hotline",
        actor=actor,
        compartment=compartment,
    )


async def register_prepared(
    session: AsyncSession, *, runtime: Runtime, prepared: list[PreparedTip]
) -> list[SubmittedTip]:
    """Register prepared tips in the caller's transaction: numbers, clues, receipts, audit entries."""
    return await session.run_sync(
        lambda sync_session: register_prepared_sync(sync_session, runtime, prepared)
    )


# Built once; Core inserts on the tables (see ``registry_service.register_clues``).
_INSERT_RECEIPT = insert(Receipt.__table__)
_INSERT_REPORTER_KEY = insert(ReporterKey.__table__)
_INSERT_CONTACT = insert(ClueContact.__table__)


def register_prepared_sync(
    session: Session, runtime: Runtime, prepared: list[PreparedTip]
) -> list[SubmittedTip]:
    """The registration itself, written once and synchronously: async callers run it through ``run_sync``,
    the SQLite intake writer runs a whole batch of it in one worker-thread call (no hop per statement).

    The batch is registered in a random order, not the order the reports arrived in: numbers, audit entries
    and row order say nothing about who came first within one group commit. Results come back in the
    caller's order."""
    with id_batch():
        return _register_shuffled(session, runtime, prepared)


def _register_shuffled(session: Session, runtime: Runtime, prepared: list[PreparedTip]) -> list[SubmittedTip]:
    order = list(range(len(prepared)))
    _shuffle(order)
    shuffled = [prepared[i] for i in order]
    registered = registry_service.register_clues(
        session, news=[p.new for p in shuffled], actors=[p.actor for p in shuffled], settings=runtime.settings
    )
    classification_service.mark_for_near_duplicates(
        session, [(c.id, p.new.near_signature) for c, p in zip(registered, shuffled, strict=True)]
    )
    keyholders.wrap_new_clues(
        session,
        keys=runtime.keys,
        news=[keyholders.NewCompartment(p.new.id, p.compartment, p.new.accused_unit_name) for p in shuffled],
    )
    clues: list[registry_service.RegisteredClue] = [registered[0]] * len(prepared)
    for position, clue in zip(order, registered, strict=True):
        clues[position] = clue
    receipt_key = runtime.lookup_key("receipt")
    now = utcnow()
    connection = session.connection()
    execute_many(
        connection,
        _INSERT_RECEIPT,
        [
            {
                "id": new_id(hour_only=not p.new.real_name),
                "clue_id": p.new.id,
                "code_hash": receipt_hash(receipt_key, p.receipt_code),
                "created_at": _stamp(now, p),
                "read_aloud": p.read_aloud,
                "revoked_at": None,
            }
            for p in shuffled
        ],
    )
    execute_many(
        connection,
        _INSERT_REPORTER_KEY,
        [
            {
                "clue_id": p.new.id,
                "public_key": p.reporter_key.public_key,
                "salt": p.reporter_key.salt,
                "wrapped_private": p.reporter_key.wrapped_private,
                "created_at": _stamp(now, p),
            }
            for p in shuffled
        ],
    )
    contacts = [{"clue_id": p.new.id, "sealed": p.contact} for p in shuffled if p.contact is not None]
    execute_many(connection, _INSERT_CONTACT, contacts)
    return [
        SubmittedTip(clue_id=clue.id, registry_number=clue.registry_number, receipt=p.receipt_code)
        for clue, p in zip(clues, prepared, strict=True)
    ]


def _stamp(now: datetime, prepared: PreparedTip) -> datetime:
    return now if prepared.new.real_name else hour_floor(now)


_shuffle = secrets.SystemRandom().shuffle


def register_batch_sync(
    open_session: sessionmaker[Session], runtime: Any, prepared: list[PreparedTip]
) -> list[SubmittedTip]:
    """Register prepared tips in one transaction of their own and commit: the SQLite intake writer (a
    worker thread of the server, or an intake worker process)."""
    with open_session() as session:
        results = register_prepared_sync(session, runtime, prepared)
        session.commit()
    return results
