"""The national (国密) envelope suite: SM2 wraps a short-lived data key, SM4-GCM seals each record under a key
derived from it with HKDF-SM3.

Why a data key: SM2 here is pure Python (milliseconds per operation), too slow to run once per record at the
intake rate. So a sealing process draws a random 16-byte data key, wraps it to the SM2 public key once per
time window (``TIPLINE_CRYPTO_DATA_KEY_SECONDS``, and at most ``MAX_USES`` records), and derives a fresh
key for every record::

    record_key = HKDF-SM3(ikm=data_key, salt=16 random bytes, info="tipline/record-key" 0x00 info, L=16)
    info       = hpke_info(suite, key_id, binding)          # as the international suite binds it
    ct         = SM4-GCM(record_key, nonce=12 random bytes, aad=info)

Envelope fields (``service.platform.crypto.envelope``): ``enc`` is the SM2 ciphertext of the data key
(``C1 || C3 || C2``, 113 bytes); ``ct`` is ``salt (16) || nonce (12) || ciphertext || tag (16)``.
Every envelope carries its own wrapped data key, so it opens on its own; the opening side caches unwrapped
data keys, so reading many records of one window costs one SM2 decryption.

What the window costs: a process that seals holds the current data key in memory. Someone who takes over a
running intake server can read what it seals from then on (as with any suite) and, in addition, the records
it sealed earlier in the current window. Keep the window short; the default is five minutes.

Key file (JSON, as ``service.platform.crypto.keys`` documents, suite ``sm2-sm4gcm-hkdfsm3``)::

    {"format": "tipline-key/1", "suite": "sm2-sm4gcm-hkdfsm3", "purpose": "case",
     "key_id": "case-<first 16 hex digits of SM3(public point)>", "created_at": "...",
     "public": {"sm2": "<base64 of 04 || x || y, 65 bytes>"},
     "private": {"sm2": "<base64 of the 32-byte private scalar d>"}}
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.platform.crypto import sm2
from service.platform.crypto.envelope import Envelope, EnvelopeError, hpke_info

NATIONAL_SUITE = "sm2-sm4gcm-hkdfsm3"
DATA_KEY_SIZE = 16
SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_USES = 1 << 20
DEFAULT_WINDOW_SECONDS = 300.0
_RECORD_INFO = b"tipline/record-key\x00"


def make_key_id(purpose: str, public: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(public)
    return f"{purpose}-{digest.finalize().hex()[:16]}"


def _record_key(data_key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SM3(), DATA_KEY_SIZE, salt, _RECORD_INFO + info).derive(data_key)


class DataKeyWindow:
    """The current data key of one public key and its SM2 wrapping; renewed when the window ends."""

    def __init__(self, seconds: float = DEFAULT_WINDOW_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._key: bytes | None = None
        self._wrapped = b""
        self._expires = 0.0
        self._uses = 0

    def current(self, public: bytes) -> tuple[bytes, bytes]:
        with self._lock:
            now = time.monotonic()
            if self._key is None or now >= self._expires or self._uses >= MAX_USES:
                self._key = os.urandom(DATA_KEY_SIZE)
                self._wrapped = sm2.encrypt(public, self._key)
                self._expires, self._uses = now + self.seconds, 0
            self._uses += 1
            return self._key, self._wrapped

    def forget(self) -> None:
        with self._lock:
            self._key, self._wrapped, self._expires = None, b"", 0.0


@dataclass(frozen=True)
class SM2PublicKey:
    purpose: Any  # "case" | "identity" | "contact"
    key_id: str
    point: bytes
    suite: str = NATIONAL_SUITE
    window: DataKeyWindow = field(default_factory=DataKeyWindow, compare=False, repr=False)

    def seal(self, plaintext: bytes, binding: str) -> bytes:
        data_key, wrapped = self.window.current(self.point)
        info = hpke_info(self.suite, self.key_id, binding)
        salt, nonce = os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE)
        encryptor = Cipher(algorithms.SM4(_record_key(data_key, salt, info)), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(info)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return Envelope(self.suite, self.key_id, wrapped, salt + nonce + body + encryptor.tag).to_bytes()


class _DataKeyCache:
    """Unwrapped data keys by the digest of their wrapping; bounded, least recently used out first."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._keys: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, private: bytes, wrapped: bytes) -> bytes:
        tag = hashlib.sha256(wrapped).digest()
        with self._lock:
            key = self._keys.get(tag)
            if key is not None:
                self._keys.move_to_end(tag)
                return key
        try:
            key = sm2.decrypt(private, wrapped)
        except sm2.SM2Error as exc:
            raise EnvelopeError("envelope failed authentication (tampered, or bound elsewhere)") from exc
        if len(key) != DATA_KEY_SIZE:
            raise EnvelopeError("envelope failed authentication (tampered, or bound elsewhere)")
        with self._lock:
            self._keys[tag] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


@dataclass(frozen=True)
class SM2KeyPair:
    public: SM2PublicKey
    private: bytes = field(repr=False)
    _cache: _DataKeyCache = field(default_factory=_DataKeyCache, compare=False, repr=False)

    @classmethod
    def generate(cls, purpose: str) -> SM2KeyPair:
        return cls.from_private(purpose, sm2.generate_private())

    @classmethod
    def from_private(cls, purpose: str, private: bytes) -> SM2KeyPair:
        point = sm2.public_from_private(private)
        return cls(public=SM2PublicKey(purpose, make_key_id(purpose, point), point), private=private)

    def open(self, envelope: Envelope, binding: str) -> bytes:
        if len(envelope.ct) < SALT_SIZE + NONCE_SIZE + TAG_SIZE:
            raise EnvelopeError("truncated envelope")
        data_key = self._cache.get(self.private, envelope.enc)
        info = hpke_info(envelope.suite, envelope.key_id, binding)
        salt, nonce = envelope.ct[:SALT_SIZE], envelope.ct[SALT_SIZE : SALT_SIZE + NONCE_SIZE]
        body, tag = envelope.ct[SALT_SIZE + NONCE_SIZE : -TAG_SIZE], envelope.ct[-TAG_SIZE:]
        decryptor = Cipher(
            algorithms.SM4(_record_key(data_key, salt, info)), modes.GCM(nonce, tag)
        ).decryptor()
        decryptor.authenticate_additional_data(info)
        try:
            # Only released after finalize() has checked the tag.
            plaintext = decryptor.update(body)
            decryptor.finalize()
        except InvalidTag as exc:
            raise EnvelopeError("envelope failed authentication (tampered, or bound elsewhere)") from exc
        return plaintext
