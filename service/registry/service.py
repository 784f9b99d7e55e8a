"""Registering clues and the staff's work on them. Services flush; the caller's edge commits."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, func, insert, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, selectinload

from service.audit import service as audit_service
from service.auth import service as auth_service
from service.auth.models import Unit
from service.auth.permissions import Action, Role, is_allowed
from service.auth.service import Principal, normalise_unit_name
from service.compartments import items as clue_items
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.keys import CLUE_FIELDS
from service.notify import service as notify_service
from service.platform.crypto.keys import KeyRing
from service.platform.db import UTCDateTime, execute_many
from service.platform.errors import Conflict, Invalid, NotFound
from service.platform.settings import Settings
from service.platform.timeutil import add_months_local, as_utc, hour_floor, local_date, utcnow
from service.registry import keyholders, recusal
from service.registry.models import Clue, ClueCategory, ClueRecusal, ClueState, recusal_reason_binding
from service.registry.numbering import next_registry_numbers

if TYPE_CHECKING:
    from service.platform.runtime import Configured


@dataclass(frozen=True)
class NewClue:
    """Everything a channel has prepared for registration; the sensitive parts already sealed."""

    id: str
    source: str
    channel: str
    real_name: bool
    received_at: datetime
    content: bytes
    accused: bytes
    classification: bytes
    identity: bytes | None
    accused_key: str | None
    accused_unit_name: str | None  # as the reporter wrote it; matched against registered units
    categories: tuple[str, ...]
    needs_triage: bool
    taxonomy_version: str
    due_at: datetime | None = None  # a superior's deadline; otherwise the disposal-proposal limit
    accused_names: bytes | None = None  # keyed digests of the accused names (see ``Clue.accused_names``)
    accused_words: bytes | None = None  # keyed digests for recusal (see ``Clue.accused_words``)
    near_signature: bytes | None = None  # keyed MinHash of the masked text (``classifier``)


@dataclass(frozen=True)
class RegisteredClue:
    id: str
    registry_number: str


# Built once: the registration statements are Core inserts on the tables (no ORM bulk-persistence pass,
# no statement construction per batch). The unit a reporter named, where it matches a registered unit
# exactly (after normalising), is resolved inside the insert itself: no extra round trip per batch.
_INSERT_CLUE = insert(Clue.__table__).values(
    accused_unit_id=select(Unit.id).where(Unit.name == bindparam("accused_unit_name")).scalar_subquery()
)
_INSERT_CATEGORY = insert(ClueCategory.__table__)


def register_clues(
    session: Session, *, news: list[NewClue], actors: list[str], settings: Settings
) -> list[RegisteredClue]:
    """Number, insert and audit several clues in the caller's transaction, with one counter update per
    year, one multi-row insert per table and one lock per audit chain: batched intake registers many
    reports per commit this way (plain Core inserts: no ORM bookkeeping on the hot path)."""
    now = utcnow()
    years = [local_date(new.received_at).year for new in news]
    numbers: dict[int, list[str]] = {}
    for year in sorted(set(years)):
        numbers[year] = next_registry_numbers(
            session, prefix=settings.registry_prefix, year=year, count=years.count(year)
        )
    rows = [
        {
            "id": new.id,
            "registry_number": numbers[year].pop(0),
            "source": new.source,
            "channel": new.channel,
            "status": "registered",
            "real_name": new.real_name,
            "received_at": new.received_at,
            "registered_at": now if new.real_name else hour_floor(now),  # anonymous: the hour only
            "due_at": new.due_at or add_months_local(new.received_at, settings.disposal_due_months),
            "needs_triage": new.needs_triage,
            "taxonomy_version": new.taxonomy_version,
            "content": new.content,
            "accused": new.accused,
            "classification": new.classification,
            "identity": new.identity,
            "accused_key": new.accused_key,
            "accused_names": new.accused_names,
            "accused_words": new.accused_words,
            "accused_unit_name": normalise_unit_name(new.accused_unit_name or ""),
        }
        for new, year in zip(news, years, strict=True)
    ]
    session.flush()  # Core statements below do not autoflush: write what the caller added first
    connection = session.connection()
    execute_many(connection, _INSERT_CLUE, rows)
    execute_many(
        connection,
        _INSERT_CATEGORY,
        [{"clue_id": new.id, "category": c} for new in news for c in new.categories],
    )
    audit_service.record_many_sync(
        session,
        [
            audit_service.PendingEntry(
                actor=actor,
                action="clue.registered",
                object_type="clue",
                object_id=row["id"],
                details={
                    "registry_number": row["registry_number"],
                    "source": row["source"],
                    "channel": row["channel"],
                    "categories": sorted(new.categories),
                    "needs_triage": row["needs_triage"],
                },
                hour_only=not new.real_name,
            )
            for row, new, actor in zip(rows, news, actors, strict=True)
        ],
    )
    return [RegisteredClue(row["id"], row["registry_number"]) for row in rows]


# --- Staff reads and assignment ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClueFilters:
    status: str | None = None
    category: str | None = None
    source: str | None = None
    channel: str | None = None
    unit_id: str | None = None  # handling unit
    received_from: datetime | None = None
    received_to: datetime | None = None
    # The desk's lists (service.registry.desk builds these): any of several statuses, a due-date window,
    # nobody assigned yet, and leaving out shelved clues (暂存待查: no clock runs on them).
    statuses: tuple[str, ...] | None = None
    due_from: datetime | None = None
    due_before: datetime | None = None
    unassigned: bool | None = None
    exclude_shelved: bool | None = None


@dataclass(frozen=True)
class Page:
    items: list[Clue]
    next_cursor: str | None


def _apply_filters(query: Select[tuple[Clue]], filters: ClueFilters) -> Select[tuple[Clue]]:
    if filters.status:
        query = query.where(Clue.status == filters.status)
    if filters.source:
        query = query.where(Clue.source == filters.source)
    if filters.channel:
        query = query.where(Clue.channel == filters.channel)
    if filters.unit_id:
        query = query.where(Clue.handling_unit_id == filters.unit_id)
    if filters.received_from:
        query = query.where(Clue.received_at >= filters.received_from)
    if filters.received_to:
        query = query.where(Clue.received_at < filters.received_to)
    if filters.category:
        query = query.where(
            Clue.id.in_(select(ClueCategory.clue_id).where(ClueCategory.category == filters.category))
        )
    if filters.statuses:
        query = query.where(Clue.status.in_(filters.statuses))
    if filters.due_from:
        query = query.where(Clue.due_at >= filters.due_from)
    if filters.due_before:
        query = query.where(Clue.due_at < filters.due_before)
    if filters.unassigned:
        query = query.where(Clue.assignee_id.is_(None))
    if filters.exclude_shelved:
        shelved = select(ClueState.clue_id).where(ClueState.disposal_method == "shelve")
        query = query.where(Clue.id.not_in(shelved))
    return query


async def count_clues(session: AsyncSession, *, filters: ClueFilters, assignee_id: str | None = None) -> int:
    """How many clues match (the ledger's result count, the home page's figures)."""
    query = select(func.count()).select_from(Clue)
    if assignee_id is not None:
        query = query.where(Clue.assignee_id == assignee_id)
    return int(await session.scalar(_apply_filters(query, filters)) or 0)  # type: ignore[arg-type]


async def list_assigned(
    session: AsyncSession, *, assignee_id: str, filters: ClueFilters, limit: int, cursor: str | None
) -> Page:
    """An investigator's clues, soonest deadline first, with keyset pagination on (due_at, id)."""
    query = _apply_filters(select(Clue).where(Clue.assignee_id == assignee_id), filters)
    if cursor:
        due, last_id = decode_cursor(cursor)
        query = query.where(
            tuple_(Clue.due_at, Clue.id) > tuple_(literal(due, UTCDateTime()), literal(last_id))
        )
    query = query.order_by(Clue.due_at, Clue.id).limit(limit + 1).options(selectinload(Clue.categories))
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].due_at, rows[-1].id) if more else None)


async def list_all(session: AsyncSession, *, filters: ClueFilters, limit: int, cursor: str | None) -> Page:
    """Every clue, newest first, keyset pagination on (received_at, id) descending."""
    query = _apply_filters(select(Clue), filters)
    if cursor:
        received, last_id = decode_cursor(cursor)
        query = query.where(
            tuple_(Clue.received_at, Clue.id) < tuple_(literal(received, UTCDateTime()), literal(last_id))
        )
    query = query.order_by(Clue.received_at.desc(), Clue.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query.options(selectinload(Clue.categories)))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].received_at, rows[-1].id) if more else None)


def encode_cursor(moment: datetime, clue_id: str) -> str:
    raw = json.dumps([as_utc(moment).isoformat(), clue_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, clue_id = json.loads(raw)
        return datetime.fromisoformat(moment), str(clue_id)
    except (ValueError, TypeError) as exc:
        raise Invalid("分页游标无效", message_en="invalid cursor") from exc


@dataclass(frozen=True)
class ClueView:
    """A clue as staff may see it: content decrypted with the case key, personal data masked, never the
    submitter's identity."""

    clue: Clue
    text: str
    incident: dict[str, Any]
    accused: dict[str, Any]
    category_hint: str | None
    classification: dict[str, Any]
    notes: dict[str, str | None]  # other reporter-written texts, masked


async def get_visible_clue(session: AsyncSession, *, clue_id: str, principal: Principal) -> Clue:
    """The clue if the caller may see it. Anything else is 404, so existence does not leak."""
    query = select(Clue).where(Clue.id == clue_id).options(selectinload(Clue.categories))
    clue = await session.scalar(query)
    if clue is not None and (
        is_allowed(principal.roles, Action.read_any_clue)
        or (is_allowed(principal.roles, Action.read_assigned_clue) and clue.assignee_id == principal.staff_id)
    ):
        return clue
    raise NotFound("线索不存在", message_en="clue not found")


async def read_clue(session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing) -> ClueView:
    """One clue's content, opened with the requester's own keys (compartments): a clue registered since
    compartments opens only through a wrap of its content key to the requester or their unit, else a
    clear refusal; an older clue opens with the case key."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    opened = await session.run_sync(
        lambda s: compartments.open_clue(s, clue_id=clue.id, unlocked=principal.unlocked)
    )
    key_used = "compartment"
    if opened is None:
        key_used = "case"
        opened = {name: keys.open(getattr(clue, name), f"clues/{clue.id}/{name}") for name in CLUE_FIELDS}
    content, accused, classification = (json.loads(opened[name]) for name in CLUE_FIELDS)
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.read",
        object_type="clue",
        object_id=clue.id,
        details={"fields": list(CLUE_FIELDS), "key": key_used},
    )
    return ClueView(
        clue=clue,
        text=content["text"],
        incident=content.get("incident") or {},
        accused=accused,
        category_hint=content.get("category_hint"),
        classification=classification,
        notes=content.get("notes") or {},
    )


async def assign_clue(
    session: AsyncSession,
    *,
    clue_id: str,
    assignee_id: str,
    principal: Principal,
    runtime: Configured,
    confirm_recusal: bool = False,
) -> Clue:
    """Assign to an active investigator of a unit (recusal applies; ``confirm_recusal`` is the supervisor's
    decision where the accused unit as written only resembles the assignee's), audited; the assignee is
    notified (content-free: a link, by their notification preference)."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    assignee = await auth_service.get_staff(session, assignee_id)
    if assignee.disabled or Role.investigator not in {r.role for r in assignee.roles}:
        raise Invalid("只能交给在岗的核查人员", message_en="the assignee must be an active investigator")
    if assignee.unit_id is None:  # recusal cannot be checked for someone of no unit: fail closed
        raise Invalid(
            "承办人未归属任何单位，不能交办线索",
            message_en="the assignee belongs to no unit and cannot be assigned",
        )
    if await session.get(ClueRecusal, (clue.id, assignee.id)) is not None:
        raise _recused_person()
    confirmed = await enforce_recusal(
        session,
        clue=clue,
        assignee_unit_id=assignee.unit_id,
        keys=runtime.keys,
        words_key=runtime.lookup_key(recusal.WORDS_KEY_LABEL),
        confirmed=confirm_recusal,
    )
    previous = clue.assignee_id
    clue.assignee_id = assignee.id
    clue.handling_unit_id = assignee.unit_id
    clue.assigned_at = utcnow()
    await session.flush()
    rewrapped = await session.run_sync(
        lambda s: keyholders.rewrap(
            s,
            clue_id=clue.id,
            unlocked=principal.unlocked,
            assignee_id=assignee.id,
            previous_assignee_id=previous,
            unit_id=assignee.unit_id,
        )
    )
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.assigned",
        object_type="clue",
        object_id=clue.id,
        details={
            "assignee_id": assignee.id,
            "previous_assignee_id": previous,
            "unit_id": assignee.unit_id,
            **({"recusal_confirmed": True} if confirmed else {}),
            **({"key_wrapped": rewrapped} if rewrapped is not None else {}),
        },
    )
    if assignee.id != previous:
        await notify_service.notify_staff(
            session,
            runtime=runtime,
            staff_ids=[assignee.id],
            event="clue_assigned",
            path=f"/staff/registry/clues/{clue.id}",
        )
    return clue


class RecusalUnconfirmed(Conflict):
    """The reporter's words come close to the assignee's unit without naming it: a person must decide."""

    code = "recusal_unconfirmed"


async def enforce_recusal(
    session: AsyncSession,
    *,
    clue: Clue,
    assignee_unit_id: str | None,
    keys: KeyRing,
    words_key: bytes | None,
    confirmed: bool = False,
) -> bool:
    """Nobody in the accused person's unit (or in a part of it) may handle the clue. Fails closed: the
    accused unit is whatever registered unit the reporter's words name, by name, alias or containment
    (``registry.recusal``); where the words only come close to the assignee's unit, the caller must have
    ``confirmed`` (a supervisor's explicit decision). Returns whether that confirmation was needed, so the
    caller audits it. The words are asked through the keyed digests intake stored (``words_key``:
    ``lookup_key(recusal.WORDS_KEY_LABEL)``), never opened; a clue registered before those were kept, or a
    process without the lookup key (the custodial command line), opens them with the case key."""
    if assignee_unit_id is None:
        return False
    assignee_units = set(await auth_service.unit_and_ancestors(session, assignee_unit_id))
    if clue.accused_unit_id is not None and clue.accused_unit_id in assignee_units:
        raise _recused()
    words: recusal.Words
    if clue.accused_words is not None and words_key is not None:
        words = recusal.KeyedWords.load(clue.accused_words, words_key)
    else:
        accused = json.loads(keys.open(clue.accused, f"clues/{clue.id}/accused"))
        words = recusal.PlainWords(recusal.accused_words(accused))
    match = await recusal.match_accused(session, words)
    if match.named & assignee_units:
        raise _recused()
    if match.near & assignee_units:
        if not confirmed:
            raise RecusalUnconfirmed(
                "被举报单位的写法与承办人所在单位相近，请核实承办人不属被举报单位后确认",
                message_en="the accused unit as reported resembles the assignee's unit: confirm the "
                "assignee is not of the accused's unit (confirm_recusal)",
            )
        return True
    return False


def _recused_person() -> Conflict:
    return Conflict(
        "回避：该人员已对此线索回避，不能承办",
        message_en="recusal: this person is recused from this clue and cannot handle it",
    )


async def move_staff(
    session: AsyncSession, *, staff_id: str, unit_id: str | None, actor: str, keys: compartment_keys.KeySource
) -> None:
    """Move a person to another unit (``unit_id``) or out of theirs (None). What they held through the old
    unit goes: its key's grants (the key is rotated as after offboarding, by a remaining member's next
    request or ``tipline unit rotate-key``) and their wraps that came through it; a clue assigned to them
    stays readable to them while assigned. The new unit's key is granted as to any new member: sealed at the
    next request of someone who holds it. Audited (``staff.unit_changed``)."""
    staff = await auth_service.get_staff(session, staff_id)
    if staff.disabled:
        raise Conflict("账号已停用", message_en="account is disabled")
    if unit_id is not None:
        await auth_service.find_unit_by_id(session, unit_id)
    if unit_id == staff.unit_id:
        raise Conflict("此人已在该单位", message_en="this person is already in that unit")
    previous = staff.unit_id
    staff.unit_id = unit_id
    await session.flush()
    grants, wraps = await session.run_sync(lambda s: keyholders.leave_unit(s, staff_id=staff.id))
    if unit_id is not None:
        await session.run_sync(
            lambda s: compartments.join_unit(s, unit_id=unit_id, staff_id=staff.id, keys=keys)
        )
    await audit_service.record(
        session,
        actor=actor,
        action="staff.unit_changed",
        object_type="staff",
        object_id=staff.id,
        details={
            "from_unit_id": previous,
            "to_unit_id": unit_id,
            "unit_grants_removed": grants,
            "clue_wraps_removed": wraps,
        },
    )


async def recuse_staff(
    session: AsyncSession, *, clue_id: str, staff_id: str, reason: str, principal: Principal, keys: KeyRing
) -> int:
    """Record that a person is recused from a clue (a supervisor's decision, also about themselves), with a
    reason sealed like the clue's other items: their wraps of its content key go, the handling unit's key no
    longer opens it for them (its other members get wraps of their own), and they cannot be assigned it.
    The current assignee must be reassigned first. Audited; returns how many wraps went."""
    reason = reason.strip()
    if not reason:
        raise Invalid("请填写回避理由", message_en="a reason is required")
    if len(reason) > RECUSAL_REASON_MAX:
        raise Invalid(
            f"回避理由不能超过 {RECUSAL_REASON_MAX} 个字",
            message_en=f"at most {RECUSAL_REASON_MAX} characters",
        )
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    person = await auth_service.get_staff(session, staff_id)
    if clue.assignee_id == person.id:
        raise Conflict(
            "此人正在承办该线索，请先改派再回避",
            message_en="this person is the clue's assignee: reassign the clue first",
        )
    if await session.get(ClueRecusal, (clue.id, person.id)) is not None:
        raise Conflict("此人已对该线索回避", message_en="this person is already recused from this clue")
    sealed = await session.run_sync(
        lambda s: clue_items.seal_item(
            s,
            keys,
            clue_id=clue.id,
            data=reason.encode("utf-8"),
            binding=recusal_reason_binding(clue.id, person.id),
        )
    )
    session.add(
        ClueRecusal(
            clue_id=clue.id,
            staff_id=person.id,
            recorded_by=principal.actor,
            created_at=utcnow(),
            reason=sealed,
        )
    )
    await session.flush()
    removed, rewrapped = await session.run_sync(
        lambda s: keyholders.recuse(s, clue_id=clue.id, staff_id=person.id, unlocked=principal.unlocked)
    )
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.recusal_recorded",
        object_type="clue",
        object_id=clue.id,
        details={
            "staff_id": person.id,
            "wraps_removed": removed,
            **({"key_wrapped": rewrapped} if rewrapped is not None else {}),
        },
    )
    return removed


RECUSAL_REASON_MAX = 2000


@dataclass(frozen=True)
class RecusalView:
    staff_id: str
    recorded_by: str  # an audit actor (``staff:<id>``)
    created_at: datetime
    reason: str | None  # None: recorded before reasons were asked for, or withheld
    reason_withheld: bool  # sealed to the clue's key, which this request does not hold


async def list_recusals(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing
) -> list[RecusalView]:
    """Who is recused from the clue, by whom and when (anyone who may see the clue); the reason only to a
    request that holds the clue's key when the clue is compartmented."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    rows = list(
        await session.scalars(
            select(ClueRecusal).where(ClueRecusal.clue_id == clue.id).order_by(ClueRecusal.created_at)
        )
    )
    if not rows:
        return []
    opener = await session.run_sync(
        lambda s: clue_items.item_opener(s, keys, clue_id=clue.id, unlocked=principal.unlocked)
    )
    withheld = opener.refusal is not None and any(row.reason for row in rows)
    return [
        RecusalView(
            staff_id=row.staff_id,
            recorded_by=row.recorded_by,
            created_at=row.created_at,
            reason=(
                opener.open(row.reason, recusal_reason_binding(clue.id, row.staff_id)).decode("utf-8")
                if row.reason and not withheld
                else None
            ),
            reason_withheld=bool(row.reason) and withheld,
        )
        for row in rows
    ]


def _recused() -> Conflict:
    return Conflict(
        "回避：被举报人所在单位的人员不能办理此线索",
        message_en="recusal: staff of the accused person's unit cannot handle this clue",
    )
