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
from functools import cache
from typing import Any

from sqlalchemy import Executable, bindparam, insert, select, update
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
from service.platform.db import execute_many
from service.platform.timeutil import hour_floor, utcnow

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
    hour_only: bool = False  # about an anonymous report's arrival: its time is kept to the hour


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


# Core statements built once (per dialect): appends are on every write path, intake's included.
_INSERT_ENTRY = insert(AuditEntry.__table__)


@dataclass(frozen=True)
class _HeadStatements:
    create: Executable  # the chain's head row, if this is the chain's first entry
    lock: Executable  # read the head, locking it (PostgreSQL) until the transaction ends
    advance: Executable


@cache
def _head_statements(dialect: str) -> _HeadStatements:
    heads = AuditHead.__table__
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    this_chain = heads.c.chain == bindparam("head_chain")
    return _HeadStatements(
        create=upsert(heads)
        .values(chain=bindparam("head_chain"), seq=0, entry_hash=GENESIS)
        .on_conflict_do_nothing(),
        lock=select(heads.c.seq, heads.c.entry_hash).where(this_chain).with_for_update(),
        advance=update(heads)
        .where(this_chain)
        .values(seq=bindparam("new_seq"), entry_hash=bindparam("new_hash")),
    )


def record_many_sync(session: Session, pending: list[PendingEntry]) -> None:
    """Append entries in order, locking each touched chain's head once (batched intake uses this).
    Written once, synchronously: async callers run it through ``run_sync``, the SQLite intake writer in
    its worker thread."""
    chains = chain_count(session)
    by_chain: dict[int, list[PendingEntry]] = {}
    for item in pending:
        by_chain.setdefault(chain_for(item.object_id, chains), []).append(item)
    suite = session.info.get("audit_suite", DEFAULT_SUITE)
    now = utcnow()
    at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    at_hour = hour_floor(now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows: list[dict[str, Any]] = []
    statements = _head_statements(session.bind.dialect.name)
    connection = session.connection()
    for chain in sorted(by_chain):  # a fixed lock order, so concurrent batches cannot deadlock
        execute_many(connection, statements.create, [{"head_chain": chain}])
        seq, prev = connection.execute(statements.lock, {"head_chain": chain}).one()
        for item in by_chain[chain]:
            seq += 1
            fields = LinkFields(
                chain=chain,
                seq=seq,
                at=at_hour if item.hour_only else at,
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
        execute_many(
            connection, statements.advance, [{"head_chain": chain, "new_seq": seq, "new_hash": prev}]
        )
    execute_many(connection, _INSERT_ENTRY, rows)


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
