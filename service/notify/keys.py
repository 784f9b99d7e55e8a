"""The outbound key pair: acknowledgement addresses are sealed to it at intake, opened only by the worker.

A third HPKE key pair beside ``case`` and ``identity``, in the same file format (purpose ``outbound``).
Intake (the ``mail`` role) loads the public half; only the outbox task loads the private half, at send time.
In development both are generated on first use; in production run ``tipline mail-outbound-key`` once
and give the private file to the worker's host only.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from service.platform.crypto.keys import (
    HPKE_SUITE,
    KEY_FORMAT,
    KeyFileError,
    KeyPair,
    KeyRing,
    PublicKey,
    make_key_id,
    write_key_pair,
    write_public_key,
)
from service.platform.settings import Settings

log = logging.getLogger("tipline.notify")
PURPOSE = "outbound"


def paths(settings: Settings) -> tuple[Path, Path]:
    keys_dir = settings.effective_keys_dir
    return keys_dir / "outbound.public.json", keys_dir / "outbound.private.json"


def generate(settings: Settings) -> PublicKey:
    public_path, private_path = paths(settings)
    pair = KeyPair.generate(PURPOSE)  # type: ignore[arg-type]
    write_key_pair(private_path, pair)
    write_public_key(public_path, pair.public)
    return pair.public


def _read(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyFileError(f"outbound key file not found: {path}") from None
    except (OSError, ValueError):
        raise KeyFileError(f"{path}: not a readable JSON key file") from None
    if (
        not isinstance(document, dict)
        or document.get("format") != KEY_FORMAT
        or document.get("suite") != HPKE_SUITE
        or document.get("purpose") != PURPOSE
    ):
        raise KeyFileError(f"{path}: not an outbound {KEY_FORMAT} key file")
    return document


def _pair(document: dict[str, object], path: Path) -> KeyPair:
    private = document.get("private")
    if not isinstance(private, dict):
        raise KeyFileError(f"{path}: not a private key file")
    pair = KeyPair.from_private_parts(
        PURPOSE,  # type: ignore[arg-type]
        base64.b64decode(private["mlkem768_seed"]),
        base64.b64decode(private["x25519"]),
    )
    if pair.public.key_id != document.get("key_id"):
        raise KeyFileError(f"{path}: key_id does not match the key")
    return pair


def load_public(settings: Settings) -> PublicKey:
    public_path, _ = paths(settings)
    if not public_path.exists() and settings.environment == "development":
        log.warning("DEVELOPMENT OUTBOUND KEY GENERATED in %s", settings.effective_keys_dir)
        return generate(settings)
    document = _read(public_path)
    public = document.get("public")
    if not isinstance(public, dict):
        raise KeyFileError(f"{public_path}: missing 'public'")
    kem, ecdh = base64.b64decode(public["mlkem768"]), base64.b64decode(public["x25519"])
    key = PublicKey(PURPOSE, make_key_id(PURPOSE, kem, ecdh), kem, ecdh)  # type: ignore[arg-type]
    if key.key_id != document.get("key_id"):
        raise KeyFileError(f"{public_path}: key_id does not match the key")
    return key


_PUBLIC: dict[str, PublicKey] = {}


def public_key(settings: Settings) -> PublicKey:
    """The outbound public key, read once per keys directory."""
    where = str(settings.effective_keys_dir.resolve())
    if where not in _PUBLIC:
        _PUBLIC[where] = load_public(settings)
    return _PUBLIC[where]


def opener(settings: Settings, ring: KeyRing) -> KeyRing:
    """A key ring that can open outbound envelopes (the worker only)."""
    _, private_path = paths(settings)
    pair = _pair(_read(private_path), private_path)
    return KeyRing(case_public=ring.case_public, identity_public=ring.identity_public, private=[pair])
