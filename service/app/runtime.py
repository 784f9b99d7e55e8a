"""What a running process holds: settings, database, the keys its role may use and the lookup secret.

Roles decide keys: ``intake`` and ``mail`` hold public keys only; ``staff`` also loads the case private
key(s), and ``worker`` loads them where they are mounted. No server role loads the identity private key —
only the custodial command line does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from service.intake.batching import IntakeBatcher
from service.intake.pipeline import IntakePipeline, intake_worker_count
from service.platform.crypto.keys import (
    AnyKeyPair,
    KeyFileError,
    KeyRing,
    generate_key_pair,
    read_key_pair,
    read_public_key,
    write_key_pair,
    write_public_key,
)
from service.platform.crypto.national import SM2PublicKey
from service.platform.db import (
    create_engine,
    create_session_factory,
    create_sqlite_reader_engine,
    create_sqlite_writer_engine,
)
from service.platform.settings import Settings

log = logging.getLogger("tipline")
T = TypeVar("T")

ROLES = ("intake", "mail", "staff", "worker")


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    keys: KeyRing
    lookup_secret: bytes
    roles: frozenset[str]
    _extra_engines: list[AsyncEngine] = field(default_factory=list, init=False, repr=False)
    _sync_engines: list[Engine] = field(default_factory=list, init=False, repr=False)

    def lookup_key(self, label: str) -> bytes:
        return derive_lookup_key(self.lookup_secret, label)

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
    def intake(self) -> IntakePipeline:
        return IntakePipeline(self, workers=intake_worker_count(self.settings))

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

    @cached_property
    def intake_batcher(self) -> IntakeBatcher:
        return IntakeBatcher(self.session_factory, self, sqlite_writer=self.sqlite_writer)

    async def close(self) -> None:
        if "intake" in self.__dict__:
            await self.intake.close()
        if "intake_batcher" in self.__dict__:
            await self.intake_batcher.close()
        for sync_engine in self._sync_engines:
            sync_engine.dispose()
        for engine in self._extra_engines:
            await engine.dispose()
        await self.engine.dispose()


@lru_cache(maxsize=64)  # on every report's path; the secret itself is in memory anyway
def derive_lookup_key(lookup_secret: bytes, label: str) -> bytes:
    """Independent keys for independent lookups, derived from the one lookup secret."""
    return hmac.new(lookup_secret, label.encode(), hashlib.sha256).digest()


def key_paths(settings: Settings) -> dict[str, Path]:
    """Where each key file lives. The national suite's files carry ``.national`` in their names, so both
    suites' keys sit side by side during a migration (``TIPLINE_CRYPTO_SUITE`` picks the sealing ones)."""
    keys_dir = settings.effective_keys_dir
    tag = ".national" if settings.crypto_suite == "national" else ""
    return {
        "case_public": keys_dir / f"case{tag}.public.json",
        "identity_public": keys_dir / f"identity{tag}.public.json",
        "contact_public": keys_dir / f"contact{tag}.public.json",
        "case_private": keys_dir / f"case{tag}.private.json",
        "identity_private": settings.data_dir / "custody" / f"identity{tag}.private.json",
    }


def ensure_development_material(settings: Settings) -> None:
    """First run on the embedded default: make keys and a lookup secret, and say loudly that they are
    development material. Never in production."""
    if settings.environment != "development":
        return
    paths = key_paths(settings)
    if not paths["case_public"].exists() and not paths["identity_public"].exists():
        case = generate_key_pair("case", settings.crypto_suite)
        identity = generate_key_pair("identity", settings.crypto_suite)
        write_key_pair(paths["case_private"], case)
        write_public_key(paths["case_public"], case.public)
        write_key_pair(paths["identity_private"], identity)
        write_public_key(paths["identity_public"], identity.public)
        log.warning(
            "DEVELOPMENT KEYS GENERATED in %s. The identity private key sits at %s on this machine: "
            "this is NOT SAFE for real reports. Production keys come from `tipline keys init` on a "
            "custodial machine.",
            settings.effective_keys_dir,
            paths["identity_private"],
        )
    secret_file = settings.data_dir / "secrets" / "lookup.key"
    if settings.lookup_secret is None and not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_hex(32))
        secret_file.chmod(0o600)
        log.warning(
            "DEVELOPMENT LOOKUP SECRET GENERATED at %s; set TIPLINE_LOOKUP_SECRET in production.", secret_file
        )


def load_lookup_secret(settings: Settings) -> bytes:
    if settings.lookup_secret is not None:
        return settings.lookup_secret.get_secret_value().encode()
    secret_file = settings.data_dir / "secrets" / "lookup.key"
    try:
        return secret_file.read_text().strip().encode()
    except OSError:
        raise KeyFileError(f"TIPLINE_LOOKUP_SECRET is not set and {secret_file} is missing") from None


def load_keys(settings: Settings, roles: frozenset[str]) -> KeyRing:
    paths = key_paths(settings)
    private: list[AnyKeyPair] = []
    # Every case key pair in the keys dir opens old envelopes after a rotation. Staff must have one; the
    # worker loads them where they are mounted (its near-duplicate task reads content).
    if roles & {"staff", "worker"}:
        private = [read_key_pair(p) for p in sorted(settings.effective_keys_dir.glob("case*.private.json"))]
    if "staff" in roles and not private:
        raise KeyFileError(f"the staff role needs the case private key at {paths['case_private']}")
    contact = read_public_key(paths["contact_public"]) if paths["contact_public"].exists() else None
    ring = KeyRing(
        case_public=read_public_key(paths["case_public"]),
        identity_public=read_public_key(paths["identity_public"]),
        contact_public=contact,
        private=private,
    )
    return with_data_key_window(ring, settings)


def with_data_key_window(ring: KeyRing, settings: Settings) -> KeyRing:
    """National suite: how long one SM2-wrapped data key seals records, from the settings."""
    for key in (ring.case_public, ring.identity_public, ring.contact_public):
        if isinstance(key, SM2PublicKey):
            key.window.seconds = settings.crypto_data_key_seconds
    return ring


def audit_hash_suite(settings: Settings) -> str:
    return "sm3" if settings.crypto_suite == "national" else "sha256"


def session_info(settings: Settings) -> dict[str, object]:
    """What services read from a session: audit chain count and the hash suite for new entries (entries
    name their suite, so a chain may switch)."""
    return {"audit_chains": settings.audit_chains, "audit_suite": audit_hash_suite(settings)}


def build_runtime(settings: Settings, roles: frozenset[str]) -> Runtime:
    ensure_development_material(settings)
    engine = create_engine(settings.effective_database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine, info=session_info(settings)),
        keys=load_keys(settings, roles),
        lookup_secret=load_lookup_secret(settings),
        roles=roles,
    )
