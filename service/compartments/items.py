"""A clue's items — messages, file keys, additions, and what staff write about it (transition reasons,
notes, requests, corrections, redacted versions, feedback) — sealed and opened.

Written by processes that do not hold the clue's content key (intake, mail ingest, the status page, the
hotline operator) and by staff alike, an item is sealed to the clue's public key: writing needs no wrap (a
recused supervisor deciding a request can record a reason they then cannot read back); only a request
holding a wrap of the content key opens it (the clue's key pair is derived from the content key). Items of
a clue sealed before compartments, or sealed before its public key was stored, keep the case key: every
read opens those with the case key — but on a compartmented clue only for a requester who holds the clue's
key, so access does not depend on which key an item happened to get.

Synchronous on a ``Session`` like ``compartments.service``; ``sealer`` and ``opener`` are the async forms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.compartments import keys as ck
from service.compartments import service as compartments
from service.platform.crypto.keys import AnyKeyPair, CaseKeyAbsent, KeyRing
from service.platform.errors import Forbidden

Seal = Callable[[bytes, str], bytes]

# What a list shows in place of an item on the case key where this server holds none (a clue registered
# before compartments, not adopted yet): the row stays, the other rows read normally.
PREDATES_COMPARTMENTS = (
    "此项登记于分隔加密之前，需运行 tipline compartments adopt",
    "predates compartments: run tipline compartments adopt",
)


def clue_sealer(session: Session, keys: KeyRing, *, clue_id: str) -> Seal:
    """``seal(data, binding)`` for one clue's items (many of them, or a file key as the blob store wraps
    it): to the clue's public key, else to the case key. Reads only the public key column (the intake role
    may)."""
    public = compartments.clue_public(session, clue_id)
    return public.seal if public is not None else keys.seal_case


def seal_item(session: Session, keys: KeyRing, *, clue_id: str, data: bytes, binding: str) -> bytes:
    return clue_sealer(session, keys, clue_id=clue_id)(data, binding)


async def sealer(session: AsyncSession, *, clue_id: str, keys: KeyRing) -> Seal:
    return await session.run_sync(lambda s: clue_sealer(s, keys, clue_id=clue_id))


@dataclass
class ItemOpener:
    """Opens one clue's items for one request; the clue's key pair is derived once through the requester's
    wrap. On a compartmented clue without it, every item is refused (``refusal``, raised when an item is
    opened), whichever key the item is sealed to."""

    keys: KeyRing
    pair: AnyKeyPair | None = field(default=None, repr=False)
    refusal: Forbidden | None = None

    def open(self, data: bytes, binding: str) -> bytes:
        if self.refusal is not None:
            raise self.refusal
        if not ck.sealed_to_clue(data):
            return self.keys.open(data, binding)
        if self.pair is None:
            raise _no_key()
        return ck.open_sealed(self.pair, data, binding)

    def open_listed(self, data: bytes, binding: str) -> tuple[bytes | None, tuple[str, str] | None]:
        """For one row of a list spanning clues: ``(plaintext, None)``, or ``(None, PREDATES_COMPARTMENTS)``
        where the item is on the case key and this server holds none, so one old row does not refuse the
        whole page (a refusal to this requester is still raised: the caller shows it as it does)."""
        try:
            return self.open(data, binding), None
        except CaseKeyAbsent:
            return None, PREDATES_COMPARTMENTS


def item_opener(session: Session, keys: KeyRing, *, clue_id: str, unlocked: ck.Unlocked | None) -> ItemOpener:
    """The requester's opener for the clue's items; a refusal is kept, not raised, so a page can show the
    rest and say which items it cannot open."""
    if not compartments.is_compartmented(session, clue_id):
        return ItemOpener(keys)
    try:
        return ItemOpener(keys, pair=compartments.clue_private(session, clue_id=clue_id, unlocked=unlocked))
    except Forbidden as refusal:
        return ItemOpener(keys, refusal=refusal)


async def opener(
    session: AsyncSession, *, clue_id: str, unlocked: ck.Unlocked | None, keys: KeyRing
) -> ItemOpener:
    """``item_opener`` for async callers, refusing at once (the clear 403 of
    ``compartments.service.content_key``) when the requester does not hold a compartmented clue's key."""
    found = await session.run_sync(lambda s: item_opener(s, keys, clue_id=clue_id, unlocked=unlocked))
    if found.refusal is not None:
        raise found.refusal
    return found


def _no_key() -> Forbidden:
    return Forbidden(
        "此线索的密钥未授予您或您所在单位，不能读取此项内容",
        message_en="this clue's key is not wrapped to you or your unit: this item cannot be read",
    )
