"""Search and repeat reports.

The accused person is never stored in plain text: a search by name and unit computes the same keyed hash
intake stores (``accused_key``) and matches it exactly. Near-duplicates come from MinHash signatures of the
masked text, computed by a job (``index_near_signatures``) off intake's hot path. Linking never merges or
hides a clue: it only lists the others.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth.service import Principal
from service.platform.errors import Invalid
from service.platform.runtime import Configured
from service.registry.models import Clue, ClueCategory


@dataclass(frozen=True)
class SearchQuery:
    accused_name: str | None = None
    accused_unit: str | None = None  # as the reporter wrote it (part of the keyed hash)
    accused_unit_id: str | None = None  # a registered unit
    registry_number: str | None = None
    category: str | None = None
    status: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None


async def search_clues(
    session: AsyncSession, *, query: SearchQuery, principal: Principal, runtime: Configured, limit: int = 100
) -> list[tuple[Clue, int]]:
    """Matching clues, newest first, each with how many clues name the same accused person."""
    if not any(vars(query).values()):
        raise Invalid("请至少填写一个查询条件", message_en="give at least one search field")
    statement = select(Clue)
    if query.accused_name:
        key = accused_index(runtime, {"name": query.accused_name, "unit": query.accused_unit})
        statement = statement.where(Clue.accused_key == key)
    if query.accused_unit_id:
        statement = statement.where(Clue.accused_unit_id == query.accused_unit_id)
    if query.registry_number:
        statement = statement.where(Clue.registry_number.startswith(query.registry_number.strip().upper()))
    if query.category:
        statement = statement.where(
            Clue.id.in_(select(ClueCategory.clue_id).where(ClueCategory.category == query.category))
        )
    if query.status:
        statement = statement.where(Clue.status == query.status)
    if query.received_from:
        statement = statement.where(Clue.received_at >= query.received_from)
    if query.received_to:
        statement = statement.where(Clue.received_at < query.received_to)
    statement = statement.order_by(Clue.received_at.desc(), Clue.id.desc()).limit(limit)
    clues = list((await session.execute(statement.options(selectinload(Clue.categories)))).scalars())
    counts = await repeat_counts(session, [c.accused_key for c in clues if c.accused_key])
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.search",
        object_type="registry",
        object_id="clues",
        details={"fields": sorted(k for k, v in vars(query).items() if v), "results": len(clues)},
    )
    return [(c, counts.get(c.accused_key or "", 1)) for c in clues]


async def repeat_counts(session: AsyncSession, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = await session.execute(
        select(Clue.accused_key, func.count())
        .where(Clue.accused_key.in_(set(keys)))
        .group_by(Clue.accused_key)
    )
    return {key: count for key, count in rows.all()}


class LookupKeys(Protocol):
    def lookup_key(self, label: str) -> bytes: ...


def accused_index(runtime: LookupKeys, accused: dict[str, str | None]) -> str | None:
    """Keyed hash of the normalised name and unit, so repeat reports link without plaintext (intake writes
    it, search looks it up)."""
    name = _normalise_name(accused.get("name"))
    if not name:
        return None
    unit = _normalise_name(accused.get("unit"))
    key = runtime.lookup_key("accused-index")
    return hmac.new(key, f"{name}\x00{unit}".encode(), hashlib.sha256).hexdigest()


def _normalise_name(value: str | None) -> str:
    text = unicodedata.normalize("NFKC", value or "")
    return "".join(ch for ch in text if not ch.isspace()).lower()
