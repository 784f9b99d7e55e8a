"""Re-sealing case envelopes to the current case key after ``tipline keys rotate``.

Resumable by construction: each batch picks clues whose envelopes still name an old case key, re-seals them
and commits with one audit entry; a crash loses at most the batch in flight, and the next run goes on where
the last one stopped. Old keys stay on disk, so nothing is unreadable at any point.

Compartments: only the case-key copy of a clue's fields (``clues.content`` …, kept by clues registered before
compartments; a newer clue has none, ``NO_CASE_COPY``) is re-sealed. The compartment
copy (``clue_sealed``, under the clue's content key), the content key's wraps and every item sealed to the
clue's own key are not case-key envelopes and are left as they are (nothing here could open them, and a
case-key rotation does not concern them). Staff items of clues sealed before compartments stay under the old
case key, which stays on disk.

Identity and contact envelopes are not re-sealed: that would need the identity private key, which exists
only as custodians' shares. They stay readable with the old shares, which custodians keep.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.platform.crypto.envelope import Envelope
from service.platform.crypto.keys import KeyRing
from service.registry.models import NO_CASE_COPY, Clue

CASE_FIELDS = ("content", "accused", "classification")
SCAN = 1000


async def reencrypt_batch(session: AsyncSession, *, keys: KeyRing, limit: int) -> int:
    current = keys.case_public.key_id
    todo: list[str] = []
    after = ""
    while len(todo) < limit:
        rows = (
            await session.execute(
                select(Clue.id, Clue.content)
                .where(Clue.id > after, Clue.content != NO_CASE_COPY)
                .order_by(Clue.id)
                .limit(SCAN)
            )
        ).all()
        if not rows:
            break
        todo += [cid for cid, content in rows if Envelope.from_bytes(content).key_id != current]
        after = rows[-1][0]
    todo = todo[:limit]
    old_keys: set[str] = set()
    for clue_id in todo:
        clue = await session.get(Clue, clue_id, with_for_update=True)
        if clue is None:
            continue
        for name in CASE_FIELDS:
            binding = f"clues/{clue.id}/{name}"
            sealed = getattr(clue, name)
            old_keys.add(Envelope.from_bytes(sealed).key_id)
            setattr(clue, name, keys.seal_case(keys.open(sealed, binding), binding))
    await session.flush()
    if todo:
        await audit_service.record(
            session,
            actor="cli",
            action="keys.reencrypted",
            object_type="keys",
            object_id=current,
            details={"clues": len(todo), "from_key_ids": sorted(old_keys), "to_key_id": current},
        )
    return len(todo)
