"""Replacing a unit's key after someone who held it left (offboarding).

Disabling an account deletes its grants, but the person may have kept a copy of the unit's private key:
every unit key they were granted is marked (``rotation_due_at``, by ``service.revoke_staff``). Someone who
holds the old key replaces it — a remaining member's next unlocked request (a bounded step each request),
the command line with a member's unlock (``tipline units rotate-key``), or custodians through the escrow
(``tipline custody recover-unit``):

1. a new unit key pair of the same suite (``replaces`` names the old one), sealed to the escrow key the old
   one was sealed to, and granted to every remaining member the old one was granted (or waited for);
2. every clue wrap of the old key rewrapped to the new one, in chunks inside ``sealing_batch()``; each chunk
   moves rows from the old key to the new, so the next run simply continues with what is left — until the
   end both keys are valid and every clue opens with either;
3. the old key retired, its grants and escrow wrap deleted.

Audited: ``unit_key.rotation_started``, ``unit_key.rotation_progress`` (each chunk),
``unit_key.rotation_finished``. Afterwards the old key opens no wrap in the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.audit import service as audit_service
from service.compartments import keys as ck
from service.compartments.models import ClueKeyWrap, CompartmentKey, UnitKeyGrant
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import AnyKeyPair, AnyPublicKey, sealing_batch
from service.platform.timeutil import utcnow

REQUEST_CHUNK = 200  # wraps rewrapped in one member's request: a few tens of milliseconds
CHUNK = 2000  # per committed chunk on the command line and in custodians' recovery


@dataclass(frozen=True)
class Step:
    unit_id: str
    old_key_id: str
    new_key_id: str
    started: bool  # the replacement was made in this step
    rewrapped: int
    remaining: int
    finished: bool
    new_pair: AnyKeyPair = field(repr=False, compare=False)


def _due(session: Session, *, key_ids: Iterable[str] | None = None, unit_id: str | None = None) -> list[str]:
    query = select(CompartmentKey.key_id).where(
        CompartmentKey.owner_kind == "unit",
        CompartmentKey.rotation_due_at.is_not(None),
        CompartmentKey.retired_at.is_(None),
    )
    if key_ids is not None:
        query = query.where(CompartmentKey.key_id.in_(list(key_ids)))
    if unit_id is not None:
        query = query.where(CompartmentKey.owner_id == unit_id)
    return list(session.scalars(query.order_by(CompartmentKey.created_at)))


def due_keys(session: Session, *, unit_id: str) -> list[str]:
    """The unit's keys waiting to be replaced, oldest first."""
    return _due(session, unit_id=unit_id)


def _escrow_public(session: Session, old: CompartmentKey) -> AnyPublicKey | None:
    """The escrow key the old unit key was sealed to (custodians hold its shares), else the newest one."""
    row = None
    if old.escrow_wrap is not None:
        row = session.get(CompartmentKey, Envelope.from_bytes(old.escrow_wrap).key_id)
    if row is None:
        row = session.scalar(
            select(CompartmentKey)
            .where(CompartmentKey.owner_kind == "escrow", CompartmentKey.retired_at.is_(None))
            .order_by(CompartmentKey.created_at.desc())
            .limit(1)
        )
    return ck.public_from_json(row.public) if row is not None else None


def from_escrow(row: CompartmentKey, escrow: AnyKeyPair | None) -> AnyKeyPair | None:
    if escrow is None or row.escrow_wrap is None:
        return None
    try:
        return ck.open_private(
            escrow, ck.public_from_json(row.public), row.escrow_wrap, ck.escrow_binding(row.key_id)
        )
    except EnvelopeError:
        return None


def _replacement(
    session: Session, old: CompartmentKey, pairs: dict[str, AnyKeyPair], escrow: AnyKeyPair | None
) -> tuple[AnyKeyPair | None, bool]:
    """(the new pair, made now): the one an interrupted run made, as this holder can open it, or a new one
    sealed to the escrow and granted to the old key's remaining members."""
    made = session.scalar(select(CompartmentKey).where(CompartmentKey.replaces == old.key_id))
    if made is not None:
        return pairs.get(made.key_id) or from_escrow(made, escrow), False
    pair = ck.generate("unit", old.suite)
    row = CompartmentKey(
        key_id=pair.public.key_id,
        owner_kind="unit",
        owner_id=old.owner_id,
        suite=pair.public.suite,
        public=ck.public_json(pair.public),
        replaces=old.key_id,
        created_at=utcnow(),
    )
    escrow_public = _escrow_public(session, old)
    if escrow_public is not None:
        row.escrow_wrap = ck.seal_private_to(pair, escrow_public, ck.escrow_binding(row.key_id))
    session.add(row)
    session.flush()
    members = session.execute(
        select(UnitKeyGrant.staff_key_id, UnitKeyGrant.staff_id, CompartmentKey.public)
        .join(CompartmentKey, CompartmentKey.key_id == UnitKeyGrant.staff_key_id)
        .where(UnitKeyGrant.unit_key_id == old.key_id, CompartmentKey.retired_at.is_(None))
    ).all()
    now = utcnow()
    for staff_key_id, staff_id, public in members:
        binding = ck.grant_binding(row.key_id, staff_key_id)
        session.add(
            UnitKeyGrant(
                unit_key_id=row.key_id,
                staff_key_id=staff_key_id,
                staff_id=staff_id,
                wrapped=ck.seal_private_to(pair, ck.public_from_json(public), binding),
                created_at=now,
            )
        )
    session.flush()
    return pair, True


def _rewrap_chunk(session: Session, *, old: AnyKeyPair, new: AnyKeyPair, limit: int) -> int:
    """Move up to ``limit`` clue wraps from the old key to the new (a row at a time, in place, only while it
    still names the old key: a concurrent run rewraps each row once)."""
    rows = session.execute(
        select(ClueKeyWrap.id, ClueKeyWrap.clue_id, ClueKeyWrap.wrapped)
        .where(ClueKeyWrap.key_id == old.public.key_id)
        .order_by(ClueKeyWrap.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    have = set(
        session.scalars(
            select(ClueKeyWrap.clue_id).where(
                ClueKeyWrap.key_id == new.public.key_id, ClueKeyWrap.clue_id.in_([r.clue_id for r in rows])
            )
        )
    )
    moved, dropped = [], []
    with sealing_batch():
        for wrap_id, clue_id, wrapped in rows:
            if clue_id in have:  # already wrapped to the new key (assigned since): the old wrap just goes
                dropped.append(wrap_id)
                continue
            content_key = ck.unwrap_content_key(old, clue_id, wrapped)
            moved.append(
                {"b_id": wrap_id, "b_wrapped": ck.wrap_content_key(new.public, clue_id, content_key)}
            )
    table = ClueKeyWrap.__table__
    if moved:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.key_id == old.public.key_id)
            .values(key_id=new.public.key_id, wrapped=bindparam("b_wrapped"), created_at=utcnow()),
            moved,
        )
    if dropped:
        session.execute(delete(table).where(table.c.id.in_(dropped)))
    return len(rows)


def _finish(session: Session, old: CompartmentKey) -> None:
    session.execute(delete(UnitKeyGrant).where(UnitKeyGrant.unit_key_id == old.key_id))
    old.retired_at = utcnow()
    old.escrow_wrap = None
    session.flush()


def step_sync(
    session: Session,
    *,
    old_key_id: str,
    pairs: dict[str, AnyKeyPair],
    escrow: AnyKeyPair | None,
    limit: int,
) -> Step | None:
    """One chunk of one unit key's rotation; None when this holder cannot do it (holds neither key, or
    another process is at it right now)."""
    old_row = session.scalar(
        select(CompartmentKey)
        .where(CompartmentKey.key_id == old_key_id, CompartmentKey.retired_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    if old_row is None:
        return None
    old = pairs.get(old_key_id) or from_escrow(old_row, escrow)
    if old is None:
        return None
    new, started = _replacement(session, old_row, pairs, escrow)
    if new is None:
        return None
    rewrapped = _rewrap_chunk(session, old=old, new=new, limit=limit)
    remaining = session.scalar(
        select(func.count()).select_from(ClueKeyWrap).where(ClueKeyWrap.key_id == old_key_id)
    )
    if not remaining:
        _finish(session, old_row)
    return Step(
        unit_id=str(old_row.owner_id),
        old_key_id=old_key_id,
        new_key_id=new.public.key_id,
        started=started,
        rewrapped=rewrapped,
        remaining=int(remaining or 0),
        finished=not remaining,
        new_pair=new,
    )


async def _audit(session: AsyncSession, step: Step, actor: str, via: str) -> None:
    ids = {"old_key_id": step.old_key_id, "new_key_id": step.new_key_id, "via": via}
    entries = []
    if step.started:
        entries.append(("unit_key.rotation_started", ids))
    if step.rewrapped or not step.finished:
        entries.append(
            ("unit_key.rotation_progress", {**ids, "rewrapped": step.rewrapped, "remaining": step.remaining})
        )
    if step.finished:
        entries.append(("unit_key.rotation_finished", ids))
    for action, details in entries:
        await audit_service.record(
            session, actor=actor, action=action, object_type="unit", object_id=step.unit_id, details=details
        )


async def advance(session: AsyncSession, *, unlocked: ck.Unlocked, actor: str) -> list[Step]:
    """A member's unlocked request: one bounded chunk of each due rotation of the unit keys it holds."""
    pairs = unlocked.pairs
    steps: list[Step] = []
    for key_id in await session.run_sync(
        lambda s: _due(s, key_ids=[p.public.key_id for p in unlocked.units])
    ):
        step = await session.run_sync(
            lambda s, k=key_id: step_sync(s, old_key_id=k, pairs=pairs, escrow=None, limit=REQUEST_CHUNK)
        )
        if step is not None:
            await _audit(session, step, actor, "request")
            steps.append(step)
    return steps


async def rotate_unit(
    session: AsyncSession,
    *,
    unit_id: str,
    pairs: dict[str, AnyKeyPair],
    escrow: AnyKeyPair | None,
    actor: str,
    via: str,
    commit: Callable[[], Awaitable[None]],
    chunk: int = CHUNK,
) -> list[Step]:
    """Every due rotation of the unit to the end, committing after each chunk (an interruption leaves both
    keys valid; the next run continues). ``pairs``: a member's unlocked keys; ``escrow``: custodians'."""
    steps: list[Step] = []
    while True:
        due = await session.run_sync(lambda s: _due(s, unit_id=unit_id))
        step = None
        for key_id in due:
            step = await session.run_sync(
                lambda s, k=key_id, held=pairs: step_sync(
                    s, old_key_id=k, pairs=held, escrow=escrow, limit=chunk
                )
            )
            if step is not None:
                break
        if step is None:
            return steps
        pairs = {**pairs, step.new_key_id: step.new_pair}  # the next chunk continues with it
        await _audit(session, step, actor, via)
        await commit()
        steps.append(step)
