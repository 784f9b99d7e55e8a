"""Who holds a clue's content key (compartments): the registry's rule, the compartments domain's wraps.

- At registration: the escrow, and the supervisors (they triage and assign every clue) except those of the
  accused unit as the reporter named it (recusal: a supervisor in that unit or a unit under it gets no wrap).
- At assignment, transfer and reassignment: the assignee and the handling unit's key; the previous
  assignee's wrap goes. The person who assigns must hold the key (they rewrap what they can open).
- Disabling an account removes every wrap of its keys (``compartments.service.revoke_staff``) and marks
  the unit keys it held for rotation (``compartments.rotation``).
- Moving a person to another unit, or out of theirs (``leave_unit``): their grants of the old unit's keys
  go and those keys are rotated as at offboarding; their own wraps that came through the unit (``member``:
  the unit's clues with a recused member) go, except on clues assigned to them personally — those they
  keep reading while assigned (an assignee's wrap does not depend on the unit) until a supervisor
  reassigns. The new unit's key is granted as to any new member (``compartments.service.join_unit``).
- Recusal of a person from one clue (``registry.recusal.recuse``): their wraps of it go, and while a member
  of the handling unit is recused the unit's wrap is replaced by wraps to its other members (``recuse``,
  ``unit_recipients``).
- When a unit's people have left, custodians rebuild the escrow key and hand the unit's clues on
  (``recover_unit``, through ``custody.service.recover_unit``).

Synchronous on a ``Session``: intake registers in one worker-thread call; async callers use ``run_sync``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.auth.models import Staff, StaffRole, Unit
from service.auth.permissions import Role
from service.auth.service import normalise_unit_name
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.models import ClueKeyWrap, CompartmentKey, UnitKeyGrant
from service.platform.crypto.keys import AnyKeyPair, KeyRing, sealing_batch
from service.platform.errors import Forbidden
from service.registry.models import Clue, ClueRecusal


@dataclass(frozen=True)
class NewCompartment:
    clue_id: str
    sealed: compartment_keys.SealedClue
    accused_unit_name: str | None


def unit_chain(parents: dict[str, str | None], unit_id: str | None) -> set[str]:
    chain: set[str] = set()
    while unit_id and unit_id not in chain and len(chain) < 32:
        chain.add(unit_id)
        unit_id = parents.get(unit_id)
    return chain


# Built once: intake runs them for every batch it registers (public columns only).
_SUPERVISOR_KEYS = (
    select(Staff.unit_id, CompartmentKey.key_id, CompartmentKey.public, Staff.id)
    .join(StaffRole, StaffRole.staff_id == Staff.id)
    .join(CompartmentKey, CompartmentKey.owner_id == Staff.id)
    .where(
        StaffRole.role == Role.supervisor.value,
        Staff.disabled.is_(False),
        CompartmentKey.owner_kind == "staff",
        CompartmentKey.retired_at.is_(None),
    )
)
_UNITS = select(Unit.id, Unit.parent_id, Unit.name)


def supervisors(session: Session) -> list[tuple[str | None, compartments.Recipient]]:
    """(unit id, key) of every active key of every active supervisor; public columns only (intake, seed)."""
    return [(unit_id, key) for unit_id, key, _ in supervisor_keys(session)]


def supervisor_keys(session: Session) -> list[tuple[str | None, compartments.Recipient, str]]:
    """(unit id, key, staff id) of every active key of every active supervisor; public columns only."""
    connection = session.connection()
    return [
        (unit_id, compartments.Recipient(key_id, public, "supervisor"), staff_id)
        for unit_id, key_id, public, staff_id in connection.execute(_SUPERVISOR_KEYS)
    ]


def wrap_new_clues(session: Session, *, keys: KeyRing, news: list[NewCompartment]) -> None:
    """Store the new clues' sealed fields and wrap their content keys to the escrow and the supervisors not
    recused (intake: public keys only)."""
    if not news:
        return
    # One KEM operation per recipient for the whole batch (each wrap still opens alone and is bound to its
    # clue; removing a clue's wrap row revokes that clue only): per-clue encapsulations to the escrow and
    # every supervisor made registration several times slower.
    with sealing_batch():
        _wrap_new_clues(session, keys=keys, news=news)


def _wrap_new_clues(session: Session, *, keys: KeyRing, news: list[NewCompartment]) -> None:
    escrow = compartments.escrow_key(session, keys)
    connection = session.connection()
    recipients_at_intake = supervisors(session)
    parents: dict[str, str | None] = {}
    by_name: dict[str, str] = {}
    if recipients_at_intake and any(new.accused_unit_name for new in news):  # recusal needs the unit tree
        for unit_id, parent_id, name in connection.execute(_UNITS):
            parents[unit_id], by_name[name] = parent_id, unit_id
    fresh: list[tuple[str, bytes, list[compartments.Recipient]]] = []
    for new in news:
        accused_unit = by_name.get(normalise_unit_name(new.accused_unit_name or ""))
        recipients = [escrow] if escrow is not None else []
        recipients += [
            key
            for unit_id, key in recipients_at_intake
            if accused_unit is None or accused_unit not in unit_chain(parents, unit_id)
        ]
        fresh.append((new.clue_id, new.sealed.content_key, recipients))
    compartments.store_new_clues(session, sealed=[(new.clue_id, new.sealed) for new in news], wraps=fresh)


def rewrap(
    session: Session,
    *,
    clue_id: str,
    unlocked: compartment_keys.Unlocked | None,
    assignee_id: str | None,
    previous_assignee_id: str | None,
    unit_id: str | None,
) -> bool | None:
    """After assignment, routing, transfer or reassignment: wrap the clue's key to the assignee (if any) and
    the handling unit, and remove the previous assignee's and any other unit's wraps.
    Returns None for a clue sealed before compartments, False when the person assigning holds no key to
    the clue (the assignment stands; the assignee reads once someone who holds it reassigns, or the escrow
    recovers it), True when rewrapped."""
    if not compartments.is_compartmented(session, clue_id):
        return None
    try:  # before any wrap goes: the assigner may hold the key through the old unit's wrap
        content_key: bytes | None = compartments.content_key(session, clue_id=clue_id, unlocked=unlocked)
    except Forbidden:
        content_key = None
    unit_key = compartments.unit_key(session, unit_id) if unit_id else None
    for_unit = unit_recipients(session, clue_id=clue_id, unit_key=unit_key)
    keep = {row.key_id for row in for_unit}
    stale = [
        wrap.key_id
        for wrap in compartments.wraps_of(session, clue_id)
        if wrap.reason in ("unit", "member") and wrap.key_id not in keep
    ]
    if previous_assignee_id and previous_assignee_id != assignee_id:
        previous = compartments.staff_keys(session, [previous_assignee_id]).get(previous_assignee_id, [])
        stale += [row.key_id for row in previous]
    compartments.remove_wraps(session, clue_id=clue_id, key_ids=stale)
    if content_key is None:
        return False
    keys_of_assignee = (
        compartments.staff_keys(session, [assignee_id]).get(assignee_id, []) if assignee_id else []
    )
    recipients = [compartments.recipient(row, "assignee") for row in keys_of_assignee]
    compartments.add_wraps(
        session, clue_id=clue_id, content_key=content_key, recipients=[*recipients, *for_unit]
    )
    return True


def _recused_holders(session: Session, *, clue_id: str, unit_key_id: str) -> bool:
    """Whether someone recused from the clue holds (or awaits) a grant of the unit key."""
    return (
        session.scalar(
            select(UnitKeyGrant.staff_id)
            .join(ClueRecusal, ClueRecusal.staff_id == UnitKeyGrant.staff_id)
            .where(UnitKeyGrant.unit_key_id == unit_key_id, ClueRecusal.clue_id == clue_id)
            .limit(1)
        )
        is not None
    )


def unit_recipients(
    session: Session, *, clue_id: str, unit_key: CompartmentKey | None
) -> list[compartments.Recipient]:
    """Who reads the clue for its handling unit: the unit key — or, when a member of the unit is recused from
    the clue, each other member's own keys instead (a recused member must not read it through the unit key).
    Members who join later get no such wrap: someone who holds the clue rewraps it by reassigning."""
    if unit_key is None:
        return []
    if not _recused_holders(session, clue_id=clue_id, unit_key_id=unit_key.key_id):
        return [compartments.recipient(unit_key, "unit")]
    rows = session.execute(
        select(CompartmentKey)
        .join(UnitKeyGrant, UnitKeyGrant.staff_key_id == CompartmentKey.key_id)
        .where(
            UnitKeyGrant.unit_key_id == unit_key.key_id,
            CompartmentKey.retired_at.is_(None),
            UnitKeyGrant.staff_id.not_in(select(ClueRecusal.staff_id).where(ClueRecusal.clue_id == clue_id)),
        )
    ).scalars()
    return [compartments.recipient(row, "member") for row in rows]


def recuse(
    session: Session, *, clue_id: str, staff_id: str, unlocked: compartment_keys.Unlocked | None
) -> tuple[int, bool | None]:
    """After a person's recusal from a clue was recorded (``ClueRecusal``): remove their wraps of it, and
    where they hold the handling unit's key, replace the unit's wrap with wraps to the unit's other members.
    Returns (wraps removed, whether the person acting could rewrap: None for a clue sealed before
    compartments). Fails closed: an actor who holds no key to the clue still removes the unit's wrap (the
    members read again once someone who holds it reassigns, or custodians recover the unit)."""
    if not compartments.is_compartmented(session, clue_id):
        return 0, None
    try:
        content_key: bytes | None = compartments.content_key(session, clue_id=clue_id, unlocked=unlocked)
    except Forbidden:
        content_key = None
    wraps = compartments.wraps_of(session, clue_id)
    own = {row.key_id for row in compartments.staff_keys(session, [staff_id]).get(staff_id, [])}
    stale = [wrap.key_id for wrap in wraps if wrap.key_id in own]
    members: list[compartments.Recipient] = []
    for wrap in wraps:
        if wrap.reason == "unit" and _recused_holders(session, clue_id=clue_id, unit_key_id=wrap.key_id):
            unit_key = session.get(CompartmentKey, wrap.key_id)
            members += unit_recipients(session, clue_id=clue_id, unit_key=unit_key)
            stale.append(wrap.key_id)
    if content_key is not None and members:
        compartments.add_wraps(session, clue_id=clue_id, content_key=content_key, recipients=members)
    removed = compartments.remove_wraps(session, clue_id=clue_id, key_ids=stale)
    session.flush()
    return removed, content_key is not None


def leave_unit(session: Session, *, staff_id: str) -> tuple[int, int]:
    """The person leaves their unit (moved or removed): their grants of its keys go and the keys are marked
    for rotation (``compartments.service.leave_unit``); their ``member`` wraps (given to the unit's members
    in place of the unit's wrap) go, except on clues assigned to them. Returns (grants, wraps) removed."""
    grants = compartments.leave_unit(session, staff_id=staff_id)
    own = [row.key_id for row in compartments.staff_keys(session, [staff_id]).get(staff_id, [])]
    if not own:
        return grants, 0
    removed = session.execute(
        delete(ClueKeyWrap)
        .where(
            ClueKeyWrap.key_id.in_(own),
            ClueKeyWrap.reason == "member",
            ClueKeyWrap.clue_id.not_in(select(Clue.id).where(Clue.assignee_id == staff_id)),
        )
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return grants, int(removed.rowcount or 0)  # type: ignore[attr-defined]


def recover_unit(
    session: Session, *, unit_id: str, escrow: AnyKeyPair, receiver_id: str, recused_units: set[str]
) -> tuple[int, bool]:
    """With the escrow key rebuilt by custodians: grant the unit's key to the receiver and wrap to them (and
    to the unit's key) the content key of every clue the unit handles that was sealed to the escrow, except
    clues about the receiver's own unit chain. Returns (clues rewrapped, unit key granted)."""
    unit_pair = compartments.unit_pair_from_escrow(session, unit_id=unit_id, escrow=escrow)
    granted = bool(unit_pair and compartments.grant_unit_key(session, unit=unit_pair, staff_id=receiver_id))
    unit_row = compartments.unit_key(session, unit_id)
    receiver_keys = compartments.staff_keys(session, [receiver_id]).get(receiver_id, [])
    found = session.execute(
        select(Clue.id, Clue.accused_unit_id, ClueKeyWrap.wrapped)
        .join(ClueKeyWrap, ClueKeyWrap.clue_id == Clue.id)
        .where(Clue.handling_unit_id == unit_id, ClueKeyWrap.key_id == escrow.public.key_id)
    ).all()
    count = 0
    personally_recused = set(
        session.scalars(select(ClueRecusal.clue_id).where(ClueRecusal.staff_id == receiver_id))
    )
    for clue_id, accused_unit_id, wrapped in found:
        if accused_unit_id is not None and accused_unit_id in recused_units or clue_id in personally_recused:
            continue
        content_key = compartment_keys.unwrap_content_key(escrow, clue_id, wrapped)
        recipients = [compartments.recipient(row, "recovered") for row in receiver_keys]
        recipients += unit_recipients(session, clue_id=clue_id, unit_key=unit_row)
        compartments.add_wraps(session, clue_id=clue_id, content_key=content_key, recipients=recipients)
        count += 1
    return count, granted
