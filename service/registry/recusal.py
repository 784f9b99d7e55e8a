"""Recusal that fails closed: which registered units a reporter's words name, and whether an assignee belongs
to one of them.

Reporters write the accused person's unit as they please: "县公安局城关派出所", "城关派出所民警",
"城关派出所。". A unit counts as named when its name or one of its aliases, normalised (NFKC, no spaces, no
punctuation), occurs anywhere in what the reporter wrote about the accused (unit, position, region, name).
Where the words come close to the assignee's own unit (or a parent of it) without naming it — the
distinctive part of the unit's name, with the generic words 公安局, 派出所, 法院… taken away, occurs in the
text, or the text's own distinctive part occurs in the unit's name, as in "城关所" — the match is
ambiguous, and the assigning supervisor must confirm that the assignee is not of the accused's unit.

The staff process never opens the reporter's words for this: intake, which holds them, stores keyed digests
of their pieces (``clues.accused_words``, :class:`KeyedWords`), and the check asks the digests whether a
unit's name occurs. Clues registered before those were kept are checked on their words opened with the case
key (``registry.service.enforce_recusal``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.models import Unit
from service.auth.unit_names import distinctive, normalise, unit_names

WORDS_KEY_LABEL = "accused-words"  # runtime.lookup_key(...) for the digests of the accused words
WINDOW = 16  # longest piece digested whole; a longer unit name counts as named when all its windows occur
_DIGEST = 8


def accused_words(accused: dict[str, Any]) -> str:
    """Everything the reporter wrote about the accused, as one normalised text."""
    return "|".join(normalise(v) for v in accused.values() if isinstance(v, str) and v.strip())


class Words(Protocol):
    """What recusal asks of the accused words, in plain text or as keyed digests."""

    def contains(self, name: str) -> bool: ...  # the name occurs in the words

    def core_within(self, name: str) -> bool: ...  # a piece's distinctive part occurs in the name


@dataclass(frozen=True)
class PlainWords:
    text: str

    def contains(self, name: str) -> bool:
        return name in self.text

    def core_within(self, name: str) -> bool:
        return any(core in name for core in _cores(self.text))


def _cores(text: str) -> list[str]:
    return [c for c in (distinctive(p) for p in text.split("|") if p) if len(c) >= 2]


def _digest(key: bytes, text: str) -> bytes:
    return hashlib.blake2b(
        text.encode("utf-8"), key=key[:64], digest_size=_DIGEST, person=b"accused-words"
    ).digest()


@dataclass(frozen=True)
class KeyedWords:
    """The accused words as keyed digests (key: ``lookup_key(WORDS_KEY_LABEL)``): every substring of two to
    ``WINDOW`` characters of each piece, and each piece's distinctive part. Without the key they answer
    nothing; a database thief cannot test a guess. A unit name longer than ``WINDOW`` is taken as named
    when every ``WINDOW``-long window of it occurs: that may say "named" for a name that does not occur
    whole, never the other way round (recusal fails closed)."""

    key: bytes
    parts: frozenset[bytes]
    cores: frozenset[bytes]

    @classmethod
    def of(cls, accused: dict[str, Any], key: bytes) -> KeyedWords:
        pieces = [p for p in accused_words(accused).split("|") if p]
        parts = {
            p[i:j] for p in pieces for i in range(len(p)) for j in range(i + 2, min(i + WINDOW, len(p)) + 1)
        }
        cores = _cores("|".join(pieces))
        return cls(key, frozenset(_digest(key, s) for s in parts), frozenset(_digest(key, c) for c in cores))

    def dump(self) -> bytes:
        """``clues.accused_words``: the number of core digests (2 bytes), the cores, then the parts."""
        cores, parts = sorted(self.cores), sorted(self.parts)
        return len(cores).to_bytes(2, "big") + b"".join(cores) + b"".join(parts)

    @classmethod
    def load(cls, stored: bytes, key: bytes) -> KeyedWords:
        count = int.from_bytes(stored[:2], "big")
        body = stored[2:]
        chunks = [body[i : i + _DIGEST] for i in range(0, len(body), _DIGEST)]
        return cls(key, frozenset(chunks[count:]), frozenset(chunks[:count]))

    def contains(self, name: str) -> bool:
        if len(name) <= WINDOW:
            return _digest(self.key, name) in self.parts
        windows = (name[i : i + WINDOW] for i in range(len(name) - WINDOW + 1))
        return all(_digest(self.key, w) in self.parts for w in windows)

    def core_within(self, name: str) -> bool:
        if not self.cores:
            return False
        n = len(name)
        return any(_digest(self.key, name[i:j]) in self.cores for i in range(n) for j in range(i + 2, n + 1))


def keyed_words(accused: dict[str, Any], *, key: bytes) -> bytes:
    """What intake stores for a clue (``clues.accused_words``); empty words store an empty set."""
    return KeyedWords.of(accused, key).dump()


@dataclass(frozen=True)
class Match:
    named: frozenset[str]  # units whose name or alias occurs in the text
    near: frozenset[str]  # units the text comes close to without naming them


def match_units(words: Words, units: Iterable[Unit]) -> Match:
    named, near = set(), set()
    for unit in units:
        names = unit_names(unit)
        if any(words.contains(name) for name in names):
            named.add(unit.id)
            continue
        cores = [c for c in (distinctive(n) for n in names) if len(c) >= 2]
        if any(words.contains(core) for core in cores) or any(words.core_within(n) for n in names):
            near.add(unit.id)
    return Match(frozenset(named), frozenset(near))


async def match_accused(session: AsyncSession, words: Words) -> Match:
    units = (await session.execute(select(Unit))).scalars()
    return match_units(words, units)
