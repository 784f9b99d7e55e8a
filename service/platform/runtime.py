"""What a running process holds and every domain may use: settings, database, the keys its role may use,
the lookup secret, and the intake entry. Built once by the composition root (``service.app.runtime``).

Roles decide keys: ``intake`` and ``mail`` hold public keys only; ``staff`` also loads the case private
key(s), and ``worker`` loads them where they are mounted. No server role loads the identity private key —
only the custodial command line does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from service.platform.blobs import LocalBlobStore
from service.platform.crypto.keys import KeyRing
from service.platform.crypto.national import SM2PublicKey
from service.platform.db import (
    create_engine,
    create_session_factory,
    create_sqlite_reader_engine,
    create_sqlite_writer_engine,
)
from service.platform.settings import Settings

T = TypeVar("T")

ROLES = ("intake", "mail", "staff", "worker")


class IntakeEntry(Protocol):
    """The one way a report enters the registry (``service.intake.pipeline.IntakePipeline``): every channel
    turns what arrived into a ``Submission`` and calls it."""

    async def start(self) -> None: ...

    async def prepare(self, submission: Any, *, actor: str) -> Any: ...

    async def submit(self, submission: Any, *, actor: str, also: Any = None) -> Any: ...

    async def register(self, prepared: Any, *, also: Any = None) -> Any: ...

    async def close(self) -> None: ...


class Sealing(Protocol):
    """Keys and lookup keys: what sealing, opening and keyed lookups need. The server's ``Runtime`` has
    them, and so has an intake worker process (``intake.pipeline``)."""

    keys: KeyRing

    def lookup_key(self, label: str) -> bytes: ...


class Configured(Sealing, Protocol):
    """What domain logic needs from a process: keys, lookup keys and the settings — not its engines,
    sessions or workers (the caller owns the transaction and passes its session)."""

    settings: Settings


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    keys: KeyRing
    lookup_secret: bytes
    roles: frozenset[str]
    # How the composition root makes this runtime's intake entry (it needs the runtime itself); a copy made
    # with ``dataclasses.replace`` (other keys, another engine) gets an entry of its own.
    intake_factory: Callable[[Runtime], IntakeEntry] | None = field(default=None, repr=False)
    _extra_engines: list[AsyncEngine] = field(default_factory=list, init=False, repr=False)
    _sync_engines: list[Engine] = field(default_factory=list, init=False, repr=False)

    @cached_property
    def intake(self) -> IntakeEntry:
        if self.intake_factory is None:
            raise RuntimeError("no intake entry: service.app.runtime.build_runtime makes one")
        return self.intake_factory(self)

    def lookup_key(self, label: str) -> bytes:
        return derive_lookup_key(self.lookup_secret, label)

    @cached_property
    def blobs(self) -> LocalBlobStore:
        """The one file store (``Settings.blob_dir``): web, mail and staff uploads alike."""
        return LocalBlobStore(self.settings.blob_dir)

    @cached_property
    def read_session_factory(self) -> async_sessionmaker[AsyncSession]:
        """For reads that write nothing (ledger, statistics, the read phase of heavy jobs): a replica when
        TIPLINE_DATABASE_READ_URL is set; on SQLite, deferred read transactions that take no write lock."""
        if self.settings.database_read_url:
            engine = create_engine(self.settings.database_read_url)
        elif self.settings.is_sqlite:
            engine = create_sqlite_reader_engine(self.settings.effective_database_url)
        else:
            return self.session_factory
        self._extra_engines.append(engine)
        return create_session_factory(engine, info=session_info(self.settings))

    @cached_property
    def sqlite_writer(self) -> sessionmaker[Session] | None:
        """On SQLite, a synchronous connection for short write transactions done in one worker-thread call
        (``write``): through aiosqlite every statement is a thread hop, and a transaction stretched over
        event-loop turns holds the database's one write lock that long. None on PostgreSQL."""
        if not self.settings.is_sqlite:
            return None
        engine = create_sqlite_writer_engine(self.settings.effective_database_url)
        self._sync_engines.append(engine)
        return sessionmaker(engine, expire_on_commit=False, autoflush=False, info=session_info(self.settings))

    async def write(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in a transaction of its own, committed: synchronous code, run in one go."""
        writer = self.sqlite_writer
        if writer is not None:

            def run() -> T:
                with writer() as session:
                    result = work(session)
                    session.commit()
                    return result

            return await asyncio.to_thread(run)
        async with self.session_factory() as session:
            result = await session.run_sync(work)
            await session.commit()
            return result

    async def close(self) -> None:
        if "intake" in self.__dict__:
            await self.intake.close()
        for sync_engine in self._sync_engines:
            sync_engine.dispose()
        for engine in self._extra_engines:
            await engine.dispose()
        await self.engine.dispose()



@lru_cache(maxsize=64)  # on every report's path; the secret itself is in memory anyway
def derive_lookup_key(lookup_secret: bytes, label: str) -> bytes:
    """Independent keys for independent lookups, derived from the one lookup secret."""
    return hmac.new(lookup_secret, label.encode(), hashlib.sha256).digest()


def audit_hash_suite(settings: Settings) -> str:
    return "sm3" if settings.crypto_suite == "national" else "sha256"


def session_info(settings: Settings) -> dict[str, object]:
    """What services read from a session: audit chain count and the hash suite for new entries (entries
    name their suite, so a chain may switch)."""
    return {"audit_chains": settings.audit_chains, "audit_suite": audit_hash_suite(settings)}


def with_data_key_window(ring: KeyRing, settings: Settings) -> KeyRing:
    """National suite: how long one SM2-wrapped data key seals records, from the settings."""
    for key in (ring.case_public, ring.identity_public, ring.contact_public, ring.escrow_public):
        if isinstance(key, SM2PublicKey):
            key.window.seconds = settings.crypto_data_key_seconds
    return ring
