"""Where the originals of a reporter's later texts are sealed: a follow-up message's, a caller's addition's,
a 回访 note's and an objection's words as written, when masking changed them (identity key). A custody
release opens them with the clue's identity (``custody.release_identity(later=...)``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.custody.service import SealedOriginal
from service.intake.assisted import addition_identity_binding
from service.messages.contact import identity_binding as contact_identity_binding
from service.messages.models import Message
from service.messages.service import identity_binding
from service.registry.additions import ClueAddition
from service.registry.models import FollowUp, Objection


async def later_originals(session: AsyncSession, clue_id: str) -> list[SealedOriginal]:
    messages = await session.execute(
        select(Message.id, Message.identity)
        .where(Message.clue_id == clue_id, Message.identity.is_not(None))
        .order_by(Message.created_at, Message.id)
    )
    additions = await session.execute(
        select(ClueAddition.id, ClueAddition.identity)
        .where(ClueAddition.clue_id == clue_id, ClueAddition.identity.is_not(None))
        .order_by(ClueAddition.created_at, ClueAddition.id)
    )
    follow_ups = await session.execute(
        select(FollowUp.id, FollowUp.identity)
        .where(FollowUp.clue_id == clue_id, FollowUp.identity.is_not(None))
        .order_by(FollowUp.recorded_at, FollowUp.id)
    )
    objections = await session.execute(
        select(Objection.id, Objection.identity)
        .where(Objection.clue_id == clue_id, Objection.identity.is_not(None))
        .order_by(Objection.received_at, Objection.id)
    )
    return [
        *(SealedOriginal(f"message:{m.id}", m.identity, identity_binding(m.id)) for m in messages),
        *(SealedOriginal(f"addition:{a.id}", a.identity, addition_identity_binding(a.id)) for a in additions),
        *(
            SealedOriginal(f"follow_up:{f.id}", f.identity, contact_identity_binding("clue_follow_ups", f.id))
            for f in follow_ups
        ),
        *(
            SealedOriginal(f"objection:{o.id}", o.identity, contact_identity_binding("clue_objections", o.id))
            for o in objections
        ),
    ]
