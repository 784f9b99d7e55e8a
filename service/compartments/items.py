"""A clue's items (messages, file keys, additions) sealed and opened from async code.

Written by processes that do not hold the clue's content key (intake, mail ingest, the status page, the
hotline operator) and by staff alike, an item is sealed to the clue's public key; only a request holding
a wrap of the content key opens it (the clue's key pair is derived from the content key). Items of a clue
sealed before compartments, or sealed before its public key was stored, keep the case key: every read
opens those with the case key — but on a compartmented clue only for a requester who holds the clue's key,
so access does not depend on which key an item happened to get.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.compartments import keys as ck
from service.compartments import service as compartments
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import AnyKeyPair, KeyRing

Seal = Callable[[bytes, str], bytes]


async def sealer(session: AsyncSession, *, clue_id: str, keys: KeyRing) -> Seal:
    """How the clue's items are sealed: ``seal(data, binding)`` to its public key, else to the case key.
    Reads only the public key column (the intake role may)."""
    public = await session.run_sync(lambda s: compartments.clue_public(s, clue_id))
    return public.seal if public is not None else keys.seal_case


@dataclass(frozen=True)
class Opener:
    """Opens one clue's items for one request; the clue's key pair is derived once."""

    keys: KeyRing
    pair: AnyKeyPair | None = field(default=None, repr=False)

    def open(self, data: bytes, binding: str) -> bytes:
        if not ck.sealed_to_clue(data):
            return self.keys.open(data, binding)
        if self.pair is None:
            raise EnvelopeError("sealed to a clue key this request does not hold")
        return ck.open_sealed(self.pair, data, binding)


async def opener(
    session: AsyncSession, *, clue_id: str, unlocked: ck.Unlocked | None, keys: KeyRing
) -> Opener:
    """The requester's opener for the clue's items; on a compartmented clue the requester must hold its key
    (else the clear 403 of ``compartments.service.content_key``)."""

    def pair(s: Session) -> AnyKeyPair | None:
        if not compartments.is_compartmented(s, clue_id):
            return None
        return compartments.clue_private(s, clue_id=clue_id, unlocked=unlocked)

    return Opener(keys, await session.run_sync(pair))
