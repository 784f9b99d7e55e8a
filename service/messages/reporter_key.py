"""The reporter's message key: pure crypto, no database.

An X25519 key pair per clue. Staff seal messages for the reporter to the public half (HPKE, X25519,
HKDF-SHA256, AES-256-GCM). The private half is wrapped with AES-256-GCM under
``HKDF-SHA256(ikm=receipt code digits, salt, info="tipline/reporter-key/v1" 0x00 clue_id)``. The code has 83
random bits, so a fast KDF suffices; nobody without the code (the server included) can unwrap it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_INFO = b"tipline/reporter-key/v1\x00"
_SEAL_INFO = b"tipline/reporter-message/v1\x00"


class ReporterKeyError(ValueError):
    """The wrapped key or a sealed message does not open (wrong code, tampered, or bound elsewhere)."""


@dataclass(frozen=True)
class WrappedReporterKey:
    public_key: bytes
    salt: bytes
    wrapped_private: bytes


def _wrapping_key(code: str, salt: bytes, clue_id: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO + clue_id.encode())
    return hkdf.derive(code.encode("ascii"))


def _wrap(private: x25519.X25519PrivateKey, code: str, clue_id: str) -> WrappedReporterKey:
    salt = os.urandom(16)
    nonce = os.urandom(12)
    private_raw = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    wrapped = nonce + AESGCM(_wrapping_key(code, salt, clue_id)).encrypt(nonce, private_raw, public)
    return WrappedReporterKey(public_key=public, salt=salt, wrapped_private=wrapped)


def new_reporter_key(code: str, clue_id: str) -> WrappedReporterKey:
    return _wrap(x25519.X25519PrivateKey.generate(), code, clue_id)


def unwrap(key: WrappedReporterKey, code: str, clue_id: str) -> bytes:
    nonce, body = key.wrapped_private[:12], key.wrapped_private[12:]
    try:
        return AESGCM(_wrapping_key(code, key.salt, clue_id)).decrypt(nonce, body, key.public_key)
    except InvalidTag:
        raise ReporterKeyError("reporter key does not open") from None


def rewrap(key: WrappedReporterKey, old_code: str, new_code: str, clue_id: str) -> WrappedReporterKey:
    """The same key pair under a new code (a hotline code replaced on first web use)."""
    return _wrap(
        x25519.X25519PrivateKey.from_private_bytes(unwrap(key, old_code, clue_id)), new_code, clue_id
    )


def seal_for_reporter(public_key: bytes, plaintext: bytes, binding: str) -> bytes:
    recipient = x25519.X25519PublicKey.from_public_bytes(public_key)
    return _SUITE.encrypt(plaintext, recipient, info=_SEAL_INFO + binding.encode())


def open_for_reporter(private_raw: bytes, sealed: bytes, binding: str) -> bytes:
    private = x25519.X25519PrivateKey.from_private_bytes(private_raw)
    try:
        return _SUITE.decrypt(sealed, private, info=_SEAL_INFO + binding.encode())
    except (InvalidTag, ValueError):
        raise ReporterKeyError("message does not open") from None
