"""Recusal that fails closed: which registered units a reporter's words name, and whether an assignee belongs
to one of them.

Reporters write the accused person's unit as they please: "县公安局城关派出所", "城关派出所民警",
"城关派出所。". A unit counts as named when its name or one of its aliases, normalised (NFKC, no spaces, no
punctuation), occurs anywhere in what the reporter wrote about the accused (unit, position, region, name).
Where the words come close to the assignee's own unit (or a parent of it) without naming it — the
distinctive part of the unit's name, with the generic words 公安局, 派出所, 法院… taken away, occurs in the
text, or the text's own distinctive part occurs in the unit's name, as in "城关所" — the match is
ambiguous, and the assigning supervisor must confirm that the assignee is not of the accused's unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.models import Unit
from service.auth.unit_names import distinctive, normalise, unit_names


def accused_words(accused: dict[str, Any]) -> str:
    """Everything the reporter wrote about the accused, as one normalised text."""
    return "|".join(normalise(v) for v in accused.values() if isinstance(v, str) and v.strip())


@dataclass(frozen=True)
class Match:
    named: frozenset[str]  # units whose name or alias occurs in the text
    near: frozenset[str]  # units the text comes close to without naming them


def match_units(text: str, units: Iterable[Unit]) -> Match:
    named, near = set(), set()
    pieces = [p for p in text.split("|") if p]
    text_cores = [c for c in (distinctive(p) for p in pieces) if len(c) >= 2]
    for unit in units:
        names = unit_names(unit)
        if any(name in text for name in names):
            named.add(unit.id)
            continue
        cores = [c for c in (distinctive(n) for n in names) if len(c) >= 2]
        if any(core in text for core in cores) or any(tc in n for tc in text_cores for n in names):
            near.add(unit.id)
    return Match(frozenset(named), frozenset(near))


async def match_accused(session: AsyncSession, accused: dict[str, Any]) -> Match:
    text = accused_words(accused)
    if not text:
        return Match(frozenset(), frozenset())
    units = (await session.execute(select(Unit))).scalars()
    return match_units(text, units)
