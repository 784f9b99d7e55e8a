"""Items staff write about a clue (transition reasons, notes, requests, corrections, versions, feedback):
sealed to the clue's own key when it has one, so only the clue's readers open them; to the case key for a
clue sealed before compartments (or whose key pair no holder has opened yet), as before.

Synchronous on a ``Session`` like ``compartments.service``; async callers use ``session.run_sync``.
Writing needs the clue's public key only: a person without a wrap (a recused supervisor deciding a
request) can still record their reason, which they then cannot read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from service.compartments import keys as ck
from service.compartments import service as compartments
from service.platform.crypto.keys import AnyKeyPair, KeyRing
from service.platform.errors import Forbidden


def sealer(session: Session, keys: KeyRing, *, clue_id: str) -> Callable[[bytes, str], bytes]:
    """``seal(data, binding)`` for one clue's items (many of them, or a file key as the blob store wraps
    it): to the clue's public key, else to the case key."""
    public = compartments.clue_public(session, clue_id)
    return public.seal if public is not None else keys.seal_case


def seal_item(session: Session, keys: KeyRing, *, clue_id: str, data: bytes, binding: str) -> bytes:
    return sealer(session, keys, clue_id=clue_id)(data, binding)


@dataclass
class ItemOpener:
    """Opens one clue's items for one request: case-key envelopes with the key ring, the clue's own with
    its key pair, derived once through the requester's wrap (or the refusal, raised when such an item is
    met: a clue's older case-key items stay readable to whoever could read them before)."""

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
