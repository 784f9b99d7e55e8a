"""A clue's items, sealed to the clue's own key when it has one, so only the clue's readers open them; to the
case key for a clue sealed before compartments (or whose public key is not stored yet), as before.

Two kinds of writer use this module:
- processes that do not hold the clue's content key (intake, mail ingest, the status page, the hotline
  operator) and staff, sealing messages, file keys and additions from async code: :func:`sealer` and
  :func:`opener` (a compartmented clue's items open only for a requester holding its key, whichever key an
  item happened to get);
- staff items (transition reasons, notes, requests, corrections, redaction versions, dossier feedback),
  synchronous on a ``Session`` like ``compartments.service`` (async callers use ``session.run_sync``):
  :func:`seal_item` and :func:`item_opener` (a clue's older case-key items stay readable to whoever could
  read them before; an item sealed to the clue refuses a requester without its key when it is met).

Writing needs the clue's public key only: a person without a wrap (a recused supervisor deciding a request)
can still record their reason, which they then cannot read back.
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
from service.platform.errors import Forbidden

Seal = Callable[[bytes, str], bytes]


def _seal_for(session: Session, keys: KeyRing, clue_id: str) -> Seal:
    public = compartments.clue_public(session, clue_id)
    return public.seal if public is not None else keys.seal_case


async def sealer(session: AsyncSession, *, clue_id: str, keys: KeyRing) -> Seal:
    """How the clue's items are sealed: ``seal(data, binding)`` to its public key, else to the case key.
    Reads only the public key column (the intake role may)."""
    return await session.run_sync(lambda s: _seal_for(s, keys, clue_id))


def seal_item(session: Session, keys: KeyRing, *, clue_id: str, data: bytes, binding: str) -> bytes:
    return _seal_for(session, keys, clue_id)(data, binding)


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


@dataclass
class ItemOpener:
    """Opens one clue's staff items for one request: case-key envelopes with the key ring, the clue's own
    with its key pair, derived once through the requester's wrap (or the refusal, raised when such an item
    is met: a clue's older case-key items stay readable to whoever could read them before)."""

    keys: KeyRing
    pair: AnyKeyPair | None = field(default=None, repr=False)
    refusal: Forbidden | None = None

    def open(self, data: bytes, binding: str) -> bytes:
        if not ck.sealed_to_clue(data):
            return self.keys.open(data, binding)
        if self.pair is None:
            raise self.refusal or _no_key()
        return ck.open_sealed(self.pair, data, binding)


def item_opener(session: Session, keys: KeyRing, *, clue_id: str, unlocked: ck.Unlocked | None) -> ItemOpener:
    if not compartments.is_compartmented(session, clue_id):
        return ItemOpener(keys)
    try:
        return ItemOpener(keys, pair=compartments.clue_private(session, clue_id=clue_id, unlocked=unlocked))
    except Forbidden as refusal:
        return ItemOpener(keys, refusal=refusal)


def _no_key() -> Forbidden:
    return Forbidden(
        "此线索的密钥未授予您或您所在单位，不能读取此项内容",
        message_en="this clue's key is not wrapped to you or your unit: this item cannot be read",
    )
