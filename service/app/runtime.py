"""Building the runtime once per process: keys for the process's roles, the lookup secret (both generated on
a development machine's first run), the database engine and the intake entry attached to it."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

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
from service.platform.db import create_engine, create_session_factory, private_directory
from service.platform.runtime import ROLES, Runtime, session_info, with_data_key_window
from service.platform.settings import Settings

__all__ = ["ROLES", "Runtime", "build_runtime"]

log = logging.getLogger("tipline")


def key_paths(settings: Settings) -> dict[str, Path]:
    """Where each key file lives. The national suite's files carry ``.national`` in their names, so both
    suites' keys sit side by side during a migration (``TIPLINE_CRYPTO_SUITE`` picks the sealing ones)."""
    keys_dir = settings.effective_keys_dir
    tag = ".national" if settings.crypto_suite == "national" else ""
    return {
        "case_public": keys_dir / f"case{tag}.public.json",
        "identity_public": keys_dir / f"identity{tag}.public.json",
        "contact_public": keys_dir / f"contact{tag}.public.json",
        "escrow_public": keys_dir / f"escrow{tag}.public.json",
        "case_private": keys_dir / f"case{tag}.private.json",
        "identity_private": settings.data_dir / "custody" / f"identity{tag}.private.json",
        "escrow_private": settings.data_dir / "custody" / f"escrow{tag}.private.json",
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
    if not paths["escrow_public"].exists():
        # The compartments' escrow key (service.compartments): custodians recover a unit's clues with it.
        escrow = generate_key_pair("escrow", settings.crypto_suite)
        write_key_pair(paths["escrow_private"], escrow)
        write_public_key(paths["escrow_public"], escrow.public)
        log.warning(
            "DEVELOPMENT ESCROW KEY GENERATED; its private half sits at %s on this machine. Production "
            "keeps it only as custodians' shares (docs/crypto.md, Compartments).",
            paths["escrow_private"],
        )
    secret_file = settings.data_dir / "secrets" / "lookup.key"
    if settings.lookup_secret is None and not secret_file.exists():
        private_directory(secret_file.parent)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
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
    # The staff service and the worker hold no long-term private key: every clue registered since
    # compartments opens through its readers' own keys (service.compartments). A case key pair found in the
    # keys dir (where an operator mounts one) opens the envelopes of clues registered before compartments
    # and not yet adopted; without one, reading such a clue answers ``CaseKeyAbsent`` (a clear 503).
    if roles & {"staff", "worker"}:
        private = [read_key_pair(p) for p in sorted(settings.effective_keys_dir.glob("case*.private.json"))]
    contact = read_public_key(paths["contact_public"]) if paths["contact_public"].exists() else None
    escrow = read_public_key(paths["escrow_public"]) if paths["escrow_public"].exists() else None
    ring = KeyRing(
        case_public=read_public_key(paths["case_public"]),
        identity_public=read_public_key(paths["identity_public"]),
        contact_public=contact,
        escrow_public=escrow,
        private=private,
    )
    return with_data_key_window(ring, settings)


def require_case_key(settings: Settings, keys: KeyRing) -> KeyRing:
    """For the one-off commands that open case-key envelopes (adoption, re-encryption, re-sealing old file
    names, the corrections export): refused, with where to run them, when this host holds no case key."""
    if not keys.can_open("case"):
        raise KeyFileError(
            f"this command needs the case private key ({key_paths(settings)['case_private'].name} in "
            f"{settings.effective_keys_dir}); run it on the custodial host that holds it"
        )
    return keys


def require_sealing_keys(settings: Settings, keys: KeyRing) -> KeyRing:
    """In production every process that registers a clue or makes a unit key wraps it to the escrow public
    key, and none starts without it: a clue sealed with no escrow wrap could not be recovered by the
    custodians once its readers leave. A development machine makes its own (``ensure_development_material``).
    """
    if settings.environment == "development" or keys.escrow_public is not None:
        return keys
    name, where = key_paths(settings)["escrow_public"].name, settings.effective_keys_dir
    raise KeyFileError(
        f"{where} 中缺少托管公钥 {name}，生产环境不能启动：请挂载 `tipline keys init` 生成的公钥（没有托管封装的线索，"
        f"承办人离开后无法恢复） / {name} missing from {where}: production does not start without the escrow "
        "public key; mount the public keys from `tipline keys init` (a clue sealed with no escrow wrap cannot "
        "be recovered once its readers leave)"
    )


def build_runtime(settings: Settings, roles: frozenset[str]) -> Runtime:
    private_directory(settings.data_dir)  # 0700: database, keys, secrets, blobs live under it
    ensure_development_material(settings)
    engine = create_engine(settings.effective_database_url)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine, info=session_info(settings)),
        keys=require_sealing_keys(settings, load_keys(settings, roles)),
        lookup_secret=load_lookup_secret(settings),
        roles=roles,
        intake_factory=intake_entry,
    )
    return runtime


def intake_entry(runtime: Runtime) -> IntakePipeline:
    return IntakePipeline(runtime, workers=intake_worker_count(runtime.settings))
