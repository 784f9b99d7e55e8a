"""Symmetric wraps for the compartment key hierarchy (``service.compartments``).

Three kinds of secret protect one another here:
- a clue's **content key** (32 random bytes) seals the clue's fields (``seal_with`` / ``open_with``); the
  content key itself is sealed to public keys (a unit's, a person's, the escrow key) with the key ring's own
  envelopes (``PublicKey.seal`` / ``SM2PublicKey.seal``);
- a person's **private key** is sealed under a key-encryption key derived from their password with Argon2id
  (``password_kek``), and under one derived from each API token's or web session's secret (``secret_kek``).

Both suites: a key pair of the international suite gets AES-256-GCM and HKDF-SHA256, a national (SM2) one
SM4-GCM and HKDF-SM3. Every sealed value is a ``TLE1`` envelope naming its suite, bound to its record by the
associated data, so a wrap copied onto another record or relabelled fails to open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.platform.crypto.envelope import Envelope, EnvelopeError, hpke_info
from service.platform.crypto.national import NATIONAL_SUITE

AES_SUITE = "wrap-aes256gcm"
SM4_SUITE = "wrap-sm4gcm-hkdfsm3"
KEY_SIZE = 32
_NONCE = 12
_TAG = 16
# RFC 9106's second recommended option (memory-constrained): t=3, 64 MiB, 4 lanes — the same profile the
# login's password hashes use, so unlocking costs about what verifying the password does.
ARGON2_ITERATIONS = 3
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_LANES = 4
SALT_SIZE = 16


def wrap_suite(key_suite: str) -> str:
    """The symmetric suite that goes with a key pair's suite."""
    return SM4_SUITE if key_suite == NATIONAL_SUITE else AES_SUITE


def password_kek(password: str, salt: bytes) -> bytes:
    """Argon2id(password, salt): the key that wraps a person's private key at rest."""
    return Argon2id(
        salt=salt,
        length=KEY_SIZE,
        iterations=ARGON2_ITERATIONS,
        lanes=ARGON2_LANES,
        memory_cost=ARGON2_MEMORY_KIB,
    ).derive(password.encode("utf-8"))


def secret_kek(secret: str, label: str) -> bytes:
    """The key a high-entropy secret (an API token, a session cookie: 256 random bits) wraps with; no
    stretching needed at that entropy. ``label`` names the token or session, so wraps do not move."""
    return HKDF(hashes.SHA256(), KEY_SIZE, None, b"tipline/secret-kek\x00" + label.encode()).derive(
        secret.encode("utf-8")
    )


def seal_with(key: bytes, suite: str, plaintext: bytes, binding: str) -> bytes:
    """Seal ``plaintext`` under a 32-byte symmetric ``key``, bound to ``binding``."""
    if len(key) != KEY_SIZE or suite not in (AES_SUITE, SM4_SUITE):
        raise EnvelopeError("wrong key size or unknown wrap suite")
    aad = hpke_info(suite, "sym", binding)
    nonce = os.urandom(_NONCE)
    if suite == AES_SUITE:
        body = AESGCM(key).encrypt(nonce, plaintext, aad)
    else:
        encryptor = Cipher(algorithms.SM4(_sm4_key(key, aad)), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag
    return Envelope(suite, "sym", b"", nonce + body).to_bytes()


def open_with(key: bytes, data: bytes, binding: str) -> bytes:
    envelope = Envelope.from_bytes(data)
    if envelope.suite not in (AES_SUITE, SM4_SUITE) or len(envelope.ct) < _NONCE + _TAG:
        raise EnvelopeError("not a symmetric wrap")
    aad = hpke_info(envelope.suite, envelope.key_id, binding)
    nonce, body = envelope.ct[:_NONCE], envelope.ct[_NONCE:]
    try:
        if envelope.suite == AES_SUITE:
            return AESGCM(key).decrypt(nonce, body, aad)
        decryptor = Cipher(algorithms.SM4(_sm4_key(key, aad)), modes.GCM(nonce, body[-_TAG:])).decryptor()
        decryptor.authenticate_additional_data(aad)
        plaintext = decryptor.update(body[:-_TAG])
        decryptor.finalize()  # checks the tag before the plaintext is returned
        return plaintext
    except (InvalidTag, ValueError) as exc:
        raise EnvelopeError("wrap failed authentication (wrong key, tampered, or bound elsewhere)") from exc


def _sm4_key(key: bytes, aad: bytes) -> bytes:
    return HKDF(hashes.SM3(), 16, None, b"tipline/sm4-wrap\x00" + aad).derive(key)


def new_content_key() -> bytes:
    return os.urandom(KEY_SIZE)


def new_salt() -> bytes:
    return os.urandom(SALT_SIZE)
