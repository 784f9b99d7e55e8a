"""``tipline compartments adopt``: clues registered before compartments, moved into them.

Such a clue lives under the case key: its fields on the row (``clues.content`` …) and the items written about
it (messages, additions, file keys, staff-written reasons …) sealed to the case key. Adopting one, on a host
holding the case private key: open its fields with the case key, seal them under a fresh content key as
intake does (``compartments.keys.seal_clue``, ``clue_sealed`` with its public half), wrap the content key to
whoever would hold it had it been registered since and handled as it was (``wrap_recipients``: the escrow,
the supervisors not recused, the handling unit, the assignee), reseal each of its case-key items to the
clue's own key under the same binding, and replace the case-key copy with ``NO_CASE_COPY``.

A clue already in compartments may still hold case-key items: custody request reasons written before
reasons were sealed to the clue, items sealed before the clue's public half was stored (``clue_sealed.public``
NULL, clues registered between those two changes), and the case-key copy of its fields that intake kept
then. The same run, once no old clue is left, walks the compartmented clues: a clue with no public half and
a case-key copy gets a fresh content key (fields sealed from the copy, its public half stored, every existing
wrap of the old content key rewrapped in place to the same key: the same people and units hold it, none
more); then each of its case-key items is resealed to its public half, and the case-key copy of its fields is
replaced with ``NO_CASE_COPY``. A compartmented clue with no public half and no copy cannot be reached here
(no key on this host opens it) and is left for a holder's read, which stores the public half; it is counted.

Resumable by construction, like ``custody.rotation``: a chunk takes clues that have no ``clue_sealed`` row
yet and adopts them in the caller's transaction, so a crash leaves each clue fully old or fully adopted and
the next run continues with the rest. The items are reached by table name (the tables of the domains above
the registry: messages, attachments, redaction, hand-off), from the list below: every column whose reads go
through ``compartments.items.opener``. Envelopes on another key (the identity key, the reporter's key, the
clue's own) are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.audit import service as audit_service
from service.auth.models import Unit
from service.compartments import keys as ck
from service.compartments import service as compartments
from service.compartments.models import ClueSealed, CompartmentKey
from service.platform.crypto.envelope import Envelope
from service.platform.crypto.keys import AnyPublicKey, KeyRing, sealing_batch
from service.platform.db import Base
from service.platform.errors import DomainError
from service.registry import keyholders
from service.registry.models import NO_CASE_COPY, Clue, ClueRecusal, recusal_reason_binding

Binding = Callable[[Any], str]


def _own(table: str, column: str) -> Binding:
    return lambda row: f"{table}/{row.id}/{column}"


def _file_key(row: Any) -> str:
    return f"attachment/{row.blob_id}"


# (table, column, binding) of every item read through ``compartments.items.opener`` (docs/crypto.md,
# "What is converted"); ``dossier_feedback`` reaches its clue through its dossier.
ITEMS: tuple[tuple[str, str, Binding], ...] = (
    ("messages", "body", _own("messages", "body")),
    ("clue_additions", "content", _own("clue_additions", "content")),
    ("attachments", "wrapped_key", _file_key),
    ("clue_transitions", "sealed", _own("clue_transitions", "sealed")),
    ("clue_progress_requests", "request", _own("clue_progress_requests", "request")),
    ("clue_progress_requests", "report", _own("clue_progress_requests", "report")),
    ("clue_consultations", "record", _own("clue_consultations", "record")),
    ("transfer_requests", "reason", _own("transfer_requests", "reason")),
    ("transfer_requests", "decision_reason", _own("transfer_requests", "decision_reason")),
    ("classification_corrections", "reason", _own("classification_corrections", "reason")),
    ("redactions", "content", _own("redactions", "content")),
    ("redactions", "marks", _own("redactions", "marks")),
    ("redactions", "reason", _own("redactions", "reason")),
    ("redactions", "wrapped_key", _file_key),
    ("unmask_requests", "reason", _own("unmask_requests", "reason")),
    ("dossiers", "wrapped_key", lambda row: f"dossiers/{row.id}/zip"),
    ("dossier_feedback", "body", _own("dossier_feedback", "body")),
    ("clue_follow_ups", "note", _own("clue_follow_ups", "note")),
    ("clue_objections", "statement", _own("clue_objections", "statement")),
    ("clue_objections", "answer", _own("clue_objections", "answer")),
    ("custody_requests", "reason", _own("custody_requests", "reason")),
    ("legal_holds", "reason", lambda row: f"legal_holds/{row.clue_id}/reason"),
    ("clue_recusals", "reason", lambda row: recusal_reason_binding(row.clue_id, row.staff_id)),
)

_OLD = select(Clue.id).where(
    Clue.content != NO_CASE_COPY, ~select(ClueSealed.clue_id).where(ClueSealed.clue_id == Clue.id).exists()
)


@dataclass(frozen=True)
class Chunk:
    clues: int
    items: int
    remaining: int
    after: str | None = None  # compartmented clues: the last one examined (the run continues after it)


def remaining(session: Session, after: str | None = None) -> int:
    """Old clues left, plus the compartmented clues after ``after`` still to examine (settled after them)."""
    old = int(session.scalar(select(func.count()).select_from(_OLD.subquery())) or 0)
    return old + int(session.scalar(select(func.count()).select_from(_compartmented(after).subquery())) or 0)


def _compartmented(after: str | None) -> Select[tuple[str]]:
    query = select(ClueSealed.clue_id)
    return query if after is None else query.where(ClueSealed.clue_id > after)


def _table(name: str) -> Table:
    table = Base.metadata.tables.get(name)
    if table is None:  # the models of the domains above are imported by whoever runs this (the CLI)
        raise RuntimeError(f"table {name} is not loaded")
    return table


def item_rows(session: Session, table_name: str, column: str, clue_ids: list[str]) -> Iterator[Any]:
    table = _table(table_name)
    value = table.c[column]
    if table_name == "dossier_feedback":
        dossiers = _table("dossiers")
        query = (
            select(table)
            .join(dossiers, dossiers.c.id == table.c.dossier_id)
            .where(dossiers.c.clue_id.in_(clue_ids))
        )
    else:
        query = select(table).where(table.c.clue_id.in_(clue_ids))
    yield from session.execute(query.where(value.is_not(None), value != b""))


def count_items(session: Session, keys: KeyRing, clue_ids: list[str]) -> int:
    """Case-key items of these clues (``--dry-run``); opens nothing."""
    case = keys.key_ids("case")
    return sum(
        Envelope.from_bytes(getattr(row, column)).key_id in case
        for name, column, _ in ITEMS
        for row in item_rows(session, name, column, clue_ids)
    )


def old_clue_ids(session: Session, limit: int | None = None) -> list[str]:
    return list(session.scalars(_OLD.order_by(Clue.id).limit(limit)))


def wrap_recipients(session: Session, keys: KeyRing, clue: Clue) -> list[compartments.Recipient]:
    """Who gets the content key of an adopted clue — keyholders' rule: the escrow, every active supervisor
    except those in the accused unit's chain or recused from the clue, the handling unit
    (``keyholders.unit_recipients``: its members instead of its key while one of them is recused) and the
    assignee unless recused."""
    recused = set(session.scalars(select(ClueRecusal.staff_id).where(ClueRecusal.clue_id == clue.id)))
    escrow = compartments.escrow_key(session, keys)
    found = [escrow] if escrow is not None else []
    parents = dict(session.execute(select(Unit.id, Unit.parent_id)).tuples().all())
    for unit_id, key, staff_id in keyholders.supervisor_keys(session):
        if staff_id in recused:
            continue
        accused = clue.accused_unit_id
        if accused is not None and accused in keyholders.unit_chain(parents, unit_id):
            continue
        found.append(key)
    if clue.handling_unit_id:
        unit_key = compartments.unit_key(session, clue.handling_unit_id)
        found += keyholders.unit_recipients(session, clue_id=clue.id, unit_key=unit_key)
    if clue.assignee_id and clue.assignee_id not in recused:
        assignee = compartments.staff_keys(session, [clue.assignee_id]).get(clue.assignee_id, [])
        found += [compartments.recipient(row, "assignee") for row in assignee]
    return found


def adopt_chunk(session: Session, *, keys: KeyRing, limit: int, after: str | None = None) -> Chunk:
    """Adopt up to ``limit`` old clues in the caller's transaction (it commits: one chunk, one commit); once
    none is left, settle up to ``limit`` compartmented clues after ``after`` (their case-key items)."""
    clue_ids = old_clue_ids(session, limit)
    case = keys.key_ids("case")
    items = 0
    with sealing_batch():
        if not clue_ids:
            clue_ids = list(session.scalars(_compartmented(after).order_by(ClueSealed.clue_id).limit(limit)))
            items = sum(_settle(session, keys, clue_id, case) for clue_id in clue_ids)
            after = clue_ids[-1] if clue_ids else after
            session.flush()
            return Chunk(clues=len(clue_ids), items=items, remaining=remaining(session, after), after=after)
        for clue_id in clue_ids:
            clue = session.get(Clue, clue_id, with_for_update=True)
            gone = clue is None or clue.content == NO_CASE_COPY
            if gone or compartments.is_compartmented(session, clue_id):
                continue  # deleted, or adopted by a concurrent run since the chunk was picked
            items += _adopt(session, keys, clue, case)
    session.flush()
    return Chunk(clues=len(clue_ids), items=items, remaining=remaining(session))


def _adopt(session: Session, keys: KeyRing, clue: Clue, case: set[str]) -> int:
    fields = {name: _open(keys, getattr(clue, name), f"clues/{clue.id}/{name}") for name in ck.CLUE_FIELDS}
    sealed = ck.seal_clue(clue.id, keys.suite, fields)
    compartments.store_new_clues(
        session,
        sealed=[(clue.id, sealed)],
        wraps=[(clue.id, sealed.content_key, wrap_recipients(session, keys, clue))],
    )
    count = _reseal_items(session, keys, clue.id, ck.public_from_json(sealed.public), case)
    for name in ck.CLUE_FIELDS:
        setattr(clue, name, NO_CASE_COPY)
    return count


def _settle(session: Session, keys: KeyRing, clue_id: str, case: set[str]) -> int:
    """A compartmented clue's case-key items resealed to its public half (made first, from the case-key copy,
    where it has none) and its case-key copy dropped; the number of items resealed."""
    clue = session.get(Clue, clue_id, with_for_update=True)
    sealed = session.get(ClueSealed, clue_id, with_for_update=True)
    if clue is None or sealed is None:
        return 0
    if sealed.public is None:
        if clue.content == NO_CASE_COPY:
            return 0  # no key here opens it: a holder's read stores its public half (counted by plan)
        _rekey(session, keys, clue, sealed)
    count = _reseal_items(session, keys, clue_id, ck.public_from_json(sealed.public), case)
    for name in ck.CLUE_FIELDS:
        setattr(clue, name, NO_CASE_COPY)
    return count


def _rekey(session: Session, keys: KeyRing, clue: Clue, sealed: ClueSealed) -> None:
    """A fresh content key for a compartmented clue whose key pair was never derived (its content key is on
    no key this host holds): its fields sealed again from the case-key copy, its public half stored, and
    each existing wrap rewrapped in place to the same key, so exactly its readers hold the new key."""
    fields = {name: _open(keys, getattr(clue, name), f"clues/{clue.id}/{name}") for name in ck.CLUE_FIELDS}
    fresh = ck.seal_clue(clue.id, keys.suite, fields)
    for name in ck.CLUE_FIELDS:
        setattr(sealed, name, fresh.fields[name])
    sealed.public = fresh.public
    for wrap in compartments.wraps_of(session, clue.id):
        key = session.get(CompartmentKey, wrap.key_id)
        assert key is not None  # a wrap's key row (foreign key)
        wrap.wrapped = ck.wrap_content_key(ck.public_from_json(key.public), clue.id, fresh.content_key)


def _reseal_items(session: Session, keys: KeyRing, clue_id: str, public: AnyPublicKey, case: set[str]) -> int:
    count = 0
    for name, column, binding in ITEMS:
        table = _table(name)
        for row in list(item_rows(session, name, column, [clue_id])):
            data = getattr(row, column)
            if Envelope.from_bytes(data).key_id not in case:
                continue  # already the clue's own key, or the identity / reporter key
            where = binding(row)
            session.execute(
                update(table)
                .where(*(c == getattr(row, c.name) for c in table.primary_key.columns))
                .values({column: public.seal(_open(keys, data, where), where)})
            )
            count += 1
    return count


def _open(keys: KeyRing, data: bytes, binding: str) -> bytes:
    try:
        return keys.open(data, binding)
    except Exception as exc:  # the chunk rolls back: the clue stays as it was, whole
        raise DomainError(
            f"无法用案件密钥打开 {binding}，本批未转换",
            message_en=f"{binding} does not open with the case key; this chunk was not adopted",
        ) from exc


# --- The run, audited: start, each chunk, finish (counts only, never content) ------------------------------


@dataclass(frozen=True)
class Plan:
    clues: int  # old clues to adopt
    items: int  # case-key items to reseal, of old and compartmented clues
    compartmented: int  # compartmented clues holding case-key items or a case-key copy of their fields
    unreachable: int  # of those, with no public half and no case-key copy: left for a holder's read


def plan_counts(session: Session, keys: KeyRing) -> Plan:
    old = old_clue_ids(session)
    items = count_items(session, keys, old)
    compartmented = unreachable = 0
    rows = session.execute(select(ClueSealed.clue_id, ClueSealed.public, Clue.content).join(Clue))
    for clue_id, public, content in rows.tuples():
        pending = count_items(session, keys, [clue_id])
        if public is None and content == NO_CASE_COPY:
            unreachable += 1
        if pending or content != NO_CASE_COPY:
            compartmented += 1
            items += pending
    return Plan(len(old), items, compartmented, unreachable)


async def plan(session: AsyncSession, *, keys: KeyRing) -> Plan:
    """What a run would convert (``--dry-run``); opens nothing."""
    return await session.run_sync(lambda s: plan_counts(s, keys))


async def started(session: AsyncSession, *, actor: str, chunk: int) -> int:
    left = await session.run_sync(remaining)
    await _audit(session, actor, "compartments.adopt_started", {"remaining": left, "chunk": chunk})
    return left


async def adopt(session: AsyncSession, *, keys: KeyRing, actor: str, limit: int, after: str | None) -> Chunk:
    """One chunk and its audit entry, in the caller's transaction."""
    done = await session.run_sync(lambda s: adopt_chunk(s, keys=keys, limit=limit, after=after))
    details = {"clues": done.clues, "items": done.items, "remaining": done.remaining}
    await _audit(session, actor, "compartments.adopt_progress", details)
    return done


async def finished(session: AsyncSession, *, actor: str, clues: int, items: int, after: str | None) -> None:
    left = await session.run_sync(lambda s: remaining(s, after))
    details = {"clues": clues, "items": items, "remaining": left}
    await _audit(session, actor, "compartments.adopt_finished", details)


async def _audit(session: AsyncSession, actor: str, action: str, details: dict[str, int]) -> None:
    await audit_service.record(
        session, actor=actor, action=action, object_type="compartments", object_id="adopt", details=details
    )
