"""Appending to and verifying the audit trail.

Appends happen inside the caller's transaction, so an action and its audit entry commit or vanish together.

Why several chains: one chain needs one lock on its head, which would serialise every write on PostgreSQL.
Entries are spread over ``n`` chains by object id (an object's history stays in one chain, in order), and
each append locks only its chain's head row, late in the transaction. On SQLite there is one chain: its
single writer already serialises transactions, so a chain lock costs nothing more.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.audit.chain import (
    DEFAULT_SUITE,
    GENESIS,
    ChainProblem,
    LinkFields,
    StoredLink,
    canonical_json,
    entry_hash,
    verify_chain,
)
from service.audit.models import AuditEntry, AuditHead
from service.timeutil import utcnow

PUBLIC_ACTOR = "public"  # a citizen: never an address, never a receipt
SYSTEM_ACTOR = "system"


def staff_actor(staff_id: str) -> str:
    return f"staff:{staff_id}"


def chain_count(session: AsyncSession | Session) -> int:
    """From TIPLINE_AUDIT_CHAINS, carried in the session's info by the runtime's session factory."""
    configured = session.info.get("audit_chains", 0)
    if configured:
        return configured
    return 1 if session.bind.dialect.name == "sqlite" else 8


def chain_for(object_id: str, chains: int) -> int:
    return zlib.crc32(object_id.encode()) % chains


@dataclass(frozen=True)
class PendingEntry:
    """An audit entry to append. ``details`` hold ids, counts and hashes only — never content or identity."""

    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any] | None = None


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry in the caller's transaction."""
    await record_many(session, [PendingEntry(actor, action, object_type, object_id, details)])


async def record_many(session: AsyncSession, pending: list[PendingEntry]) -> None:
    """Append entries in order in the caller's transaction (see ``record_many_sync``)."""
    await session.run_sync(record_many_sync, pending)


def record_many_sync(session: Session, pending: list[PendingEntry]) -> None:
    """Append entries in order, locking each touched chain's head once (batched intake uses this).
    Written once, synchronously: async callers run it through ``run_sync``, the SQLite intake writer in
    its worker thread."""
    chains = chain_count(session)
    by_chain: dict[int, list[PendingEntry]] = {}
    for item in pending:
        by_chain.setdefault(chain_for(item.object_id, chains), []).append(item)
    upsert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    suite = session.info.get("audit_suite", DEFAULT_SUITE)
    at = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows: list[dict[str, Any]] = []
    for chain in sorted(by_chain):  # a fixed lock order, so concurrent batches cannot deadlock
        session.execute(
            upsert(AuditHead).values(chain=chain, seq=0, entry_hash=GENESIS).on_conflict_do_nothing()
        )
        seq, prev = (
            session.execute(
                select(AuditHead.seq, AuditHead.entry_hash).where(AuditHead.chain == chain).with_for_update()
            )
        ).one()
        for item in by_chain[chain]:
            seq += 1
            fields = LinkFields(
                chain=chain,
                seq=seq,
                at=at,
                actor=item.actor,
                action=item.action,
                object_type=item.object_type,
                object_id=item.object_id,
                details=canonical_json(item.details or {}),
                suite=suite,
                prev_hash=prev,
            )
            prev = entry_hash(fields)
            rows.append({**vars(fields), "entry_hash": prev})
        session.execute(
            update(AuditHead).where(AuditHead.chain == chain).values(seq=seq, entry_hash=prev)
        )
    session.execute(insert(AuditEntry), rows)


@dataclass(frozen=True)
class VerifyReport:
    chains: int
    entries: int
    problem: ChainProblem | None


async def verify(session: AsyncSession) -> VerifyReport:
    """Check every chain from its first entry to its head; stop at the first problem."""
    heads = {h.chain: (h.seq, h.entry_hash) for h in (await session.execute(select(AuditHead))).scalars()}
    chain_ids = set(heads) | set((await session.execute(select(AuditEntry.chain).distinct())).scalars())
    total = 0
    for chain in sorted(chain_ids):
        links = await _chain_links(session, chain)
        total += len(links)
        problem = verify_chain(chain, links, heads.get(chain))
        if problem is None and chain not in heads:
            problem = ChainProblem(chain, None, None, "chain has entries but no head (head removed)")
        if problem:
            return VerifyReport(len(chain_ids), total, problem)
    return VerifyReport(len(chain_ids), total, None)


async def _chain_links(session: AsyncSession, chain: int) -> list[StoredLink]:
    result = await session.stream_scalars(
        select(AuditEntry).where(AuditEntry.chain == chain).order_by(AuditEntry.seq, AuditEntry.id)
    )
    return [
        StoredLink(
            entry.id,
            LinkFields(
                chain=entry.chain,
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                object_type=entry.object_type,
                object_id=entry.object_id,
                details=entry.details,
                suite=entry.suite,
                prev_hash=entry.prev_hash,
            ),
            entry.entry_hash,
        )
        async for entry in result
    ]
