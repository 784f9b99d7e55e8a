"""Search and repeat reports.

The accused person is never stored in plain text: a search by name and unit computes the same keyed hash
intake stores (``accused_key``) and matches it exactly. Near-duplicates come from MinHash signatures of the
masked text, computed by a job (``index_near_signatures``) off intake's hot path. Linking never merges or
hides a clue: it only lists the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.app.runtime import Runtime
from service.audit import service as audit_service
from service.auth.service import Principal
from service.classification import classifier as classify_service
from service.platform.errors import Invalid
from service.registry.models import Clue, ClueCategory, ClueState
from service.registry.service import get_visible_clue

NEAR_DUPLICATE_THRESHOLD = 0.6
NEAR_DUPLICATE_WINDOW = 5000  # compare with the most recent clues that have a signature


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
    session: AsyncSession, *, query: SearchQuery, principal: Principal, runtime: Runtime, limit: int = 100
) -> list[tuple[Clue, int]]:
    """Matching clues, newest first, each with how many clues name the same accused person."""
    from service.intake.service import accused_index

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


async def related_clues(
    session: AsyncSession, *, clue_id: str, principal: Principal
) -> dict[str, list[dict[str, Any]]]:
    """Other clues about the same accused person (any channel), and near-duplicate texts."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    same: list[dict[str, Any]] = []
    if clue.accused_key:
        rows = await session.execute(
            select(Clue.id, Clue.registry_number, Clue.channel, Clue.status, Clue.received_at)
            .where(Clue.accused_key == clue.accused_key, Clue.id != clue.id)
            .order_by(Clue.received_at)
        )
        same = [dict(r._mapping) for r in rows.all()]
    near: list[dict[str, Any]] = []
    state = await session.get(ClueState, clue.id)
    if state is not None and state.near_signature:
        rows = await session.execute(
            select(
                ClueState.clue_id, ClueState.near_signature, Clue.registry_number, Clue.channel, Clue.status
            )
            .join(Clue, Clue.id == ClueState.clue_id)
            .where(ClueState.near_signature.is_not(None), ClueState.clue_id != clue.id)
            .order_by(Clue.received_at.desc())
            .limit(NEAR_DUPLICATE_WINDOW)
        )
        for other_id, signature, number, channel, status in rows.all():
            score = classify_service.signature_similarity(state.near_signature, signature)
            if score >= NEAR_DUPLICATE_THRESHOLD:
                near.append(
                    {
                        "id": other_id,
                        "registry_number": number,
                        "channel": channel,
                        "status": status,
                        "similarity": round(score, 2),
                    }
                )
        near.sort(key=lambda item: -item["similarity"])
    # Near-duplicate links stored by the classification job (service/classification): shown first, marked.
    from service.classification import service as classification_service

    linked = await classification_service.linked_clues(session, clue_id=clue.id)
    near = linked + [item for item in near if item["id"] not in {link["id"] for link in linked}]
    return {"same_accused": same, "near_duplicates": near}
