"""Key pairs, key files and the key ring that seals and opens envelopes.

Two purposes, from the start:
- ``case``: the report's content at rest. Intake holds the public key; only the staff side loads the
  private key.
- ``identity``: submitter details. Intake and staff hold the public key; no server process loads the
  private key, only the custodial command line.

Key file format (JSON, UTF-8), one key pair or public key per file::

    {"format": "tipline-key/1", "suite": "hpke-mlkem768x25519-hkdfsha256-aes256gcm",
     "purpose": "case", "key_id": "case-<16 hex>", "created_at": "<ISO 8601 UTC>",
     "public":  {"mlkem768": "<base64, 1184 bytes>", "x25519": "<base64, 32 bytes>"},
     "private": {"mlkem768_seed": "<base64, 64 bytes>", "x25519": "<base64, 32 bytes>"}}

``private`` is absent from a public key file. The hybrid key is built from its two halves, as the
HPKE ML-KEM-768+X25519 KEM defines it. ``key_id`` is the purpose plus the first 16 hex digits of
SHA-256 over the two public halves, so it names the key without revealing anything.

The national suite (``sm2-sm4gcm-hkdfsm3``, see ``service.platform.crypto.national``) uses the same file
format with ``"public": {"sm2": ...}`` and ``"private": {"sm2": ...}``. ``TIPLINE_CRYPTO_SUITE`` chooses
which suite new envelopes are sealed with; a key ring opens envelopes of both suites, as each names its suite and key.

A third purpose, ``contact``, holds the contact fields of a real-name reporter apart from their identity,
so statutory feedback needs one custodian, not two (``service.custody``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.platform.crypto import sm2
from service.platform.crypto.envelope import Envelope, EnvelopeError, hpke_info
from service.platform.crypto.national import NATIONAL_SUITE, SM2KeyPair, SM2PublicKey
from service.platform.crypto.national import make_key_id as national_key_id
from service.platform.errors import TemporarilyUnavailable

# ``unit``, ``staff``, ``escrow`` and ``clue`` are the compartment keys (``service.compartments``): a handling
# unit's content key, a person's key, the escrow key whose private half is split among custodians, and a
# clue's own key pair (derived from its content key) that processes without the content key seal to.
Purpose = Literal["case", "identity", "contact", "unit", "staff", "escrow", "clue"]
PURPOSES = ("case", "identity", "contact", "unit", "staff", "escrow", "clue")
SUITE_NAMES = {"international": "hpke-mlkem768x25519-hkdfsha256-aes256gcm", "national": "sm2-sm4gcm-hkdfsm3"}
KEY_FORMAT = "tipline-key/1"
HPKE_SUITE = "hpke-mlkem768x25519-hkdfsha256-aes256gcm"
# Many records under one KEM operation (a batch: the fields of one record, or the tips an intake worker
# prepares together). HPKE seals a fresh 32-byte batch key once per public key; every field gets its own key
# derived from it, bound to the field's full binding, and that binding is the associated data too::
#
#     info       = hpke_info(suite, key_id, binding)
#     field_key  = HKDF-SHA256(ikm=batch_key, salt=16 random bytes, info="tipline/field-key" 0x00 info)
#     enc || w   = HPKE seal of batch_key, info = hpke_info(suite, key_id, "batch")   (w: 48 bytes)
#     ct         = w || salt || nonce (12) || AES-256-GCM(field_key, nonce, aad=info)
#
# Every envelope carries the wrapped batch key, so it opens on its own, and cannot be moved to another record
# or field. The batch key lives only while its batch is sealed — while the same process holds the batch's
# plaintexts anyway — so a compromised intake process learns nothing it would not see by watching.
HPKE_BATCH_SUITE = "hpke-mlkem768x25519-hkdfsha256-aes256gcm-bk"
# Before batches: one key per record, HPKE-bound to the record ("clues/<id>"); opened, no longer sealed.
HPKE_RECORD_SUITE = "hpke-mlkem768x25519-hkdfsha256-aes256gcm-rk"
_KEY_WRAP = 32 + 16  # the HPKE ciphertext of a 32-byte batch or record key (key + tag)
_SALT = 16
_NONCE = 12
_FIELD_KEY_INFO = b"tipline/field-key\x00"
_BATCH_INFO = "batch"
_BATCH: ContextVar[dict[str, tuple[bytes, bytes]] | None] = ContextVar("tipline_seal_batch", default=None)


@contextmanager
def sealing_batch() -> Iterator[None]:
    """Inside, each public key seals under one batch key (one KEM operation for the whole batch); the batch
    keys are dropped at the end. Nested batches join the outer one. Per context: other tasks and threads
    are not part of it."""
    if _BATCH.get() is not None:
        yield
        return
    token = _BATCH.set({})
    try:
        yield
    finally:
        _BATCH.reset(token)


_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_ENC_LENGTH = hpke.KEM.MLKEM768_X25519.enc_length()


class KeyFileError(ValueError):
    """A key file is missing, unreadable or not in the expected format."""


@dataclass(frozen=True)
class PublicKey:
    purpose: Purpose
    key_id: str
    mlkem768: bytes
    x25519: bytes
    suite: str = HPKE_SUITE

    @cached_property
    def hpke_key(self) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(self.mlkem768),
            x25519.X25519PublicKey.from_public_bytes(self.x25519),
        )

    def seal(self, plaintext: bytes, binding: str) -> bytes:
        """Encrypt ``plaintext`` for this key, bound to ``binding`` (e.g. ``clues/<id>/content``): plain
        HPKE, or under the batch key inside ``sealing_batch()``."""
        batch = _BATCH.get()
        if batch is None:
            info = hpke_info(self.suite, self.key_id, binding)
            sealed = _SUITE.encrypt(plaintext, self.hpke_key, info=info)
            return Envelope(self.suite, self.key_id, sealed[:_ENC_LENGTH], sealed[_ENC_LENGTH:]).to_bytes()
        if self.key_id not in batch:
            batch_key = os.urandom(32)
            info = hpke_info(HPKE_BATCH_SUITE, self.key_id, _BATCH_INFO)
            batch[self.key_id] = (batch_key, _SUITE.encrypt(batch_key, self.hpke_key, info=info))
        batch_key, wrapped = batch[self.key_id]
        info = hpke_info(HPKE_BATCH_SUITE, self.key_id, binding)
        salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
        body = AESGCM(_field_key(batch_key, salt, info)).encrypt(nonce, plaintext, info)
        ct = wrapped[_ENC_LENGTH:] + salt + nonce + body
        return Envelope(HPKE_BATCH_SUITE, self.key_id, wrapped[:_ENC_LENGTH], ct).to_bytes()


def _field_key(batch_key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, _FIELD_KEY_INFO + info).derive(batch_key)


@dataclass(frozen=True)
class KeyPair:
    public: PublicKey
    mlkem768_seed: bytes = field(repr=False)
    x25519_private: bytes = field(repr=False)

    @classmethod
    def generate(cls, purpose: Purpose) -> KeyPair:
        kem = mlkem.MLKEM768PrivateKey.generate()
        ecdh = x25519.X25519PrivateKey.generate()
        return cls.from_private_parts(purpose, kem.private_bytes_raw(), ecdh.private_bytes_raw())

    @classmethod
    def from_private_parts(cls, purpose: Purpose, mlkem_seed: bytes, x25519_raw: bytes) -> KeyPair:
        kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(mlkem_seed)
        ecdh = x25519.X25519PrivateKey.from_private_bytes(x25519_raw)
        pub_kem = kem.public_key().public_bytes_raw()
        pub_ecdh = ecdh.public_key().public_bytes_raw()
        public = PublicKey(purpose, make_key_id(purpose, pub_kem, pub_ecdh), pub_kem, pub_ecdh)
        return cls(public=public, mlkem768_seed=mlkem_seed, x25519_private=x25519_raw)

    @cached_property
    def hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(self.mlkem768_seed),
            x25519.X25519PrivateKey.from_private_bytes(self.x25519_private),
        )

    def open(self, envelope: Envelope, binding: str) -> bytes:
        try:
            if envelope.suite == HPKE_BATCH_SUITE:
                return self._open_batch_field(envelope, binding)
            if envelope.suite == HPKE_RECORD_SUITE:
                return self._open_record_field(envelope, binding)
            info = hpke_info(envelope.suite, envelope.key_id, binding)
            return _SUITE.decrypt(envelope.enc + envelope.ct, self.hpke_key, info=info)
        except (InvalidTag, ValueError) as exc:
            raise EnvelopeError("envelope failed authentication (tampered, or bound elsewhere)") from exc

    def _open_batch_field(self, envelope: Envelope, binding: str) -> bytes:
        ct = envelope.ct
        wrapped, salt = ct[:_KEY_WRAP], ct[_KEY_WRAP : _KEY_WRAP + _SALT]
        nonce, body = ct[_KEY_WRAP + _SALT : _KEY_WRAP + _SALT + _NONCE], ct[_KEY_WRAP + _SALT + _NONCE :]
        batch_key = _SUITE.decrypt(
            envelope.enc + wrapped,
            self.hpke_key,
            info=hpke_info(envelope.suite, envelope.key_id, _BATCH_INFO),
        )
        info = hpke_info(envelope.suite, envelope.key_id, binding)
        return AESGCM(_field_key(batch_key, salt, info)).decrypt(nonce, body, info)

    def _open_record_field(self, envelope: Envelope, binding: str) -> bytes:
        record = binding.rsplit("/", 1)[0]
        ct = envelope.ct
        wrapped_key, nonce, body = (
            ct[:_KEY_WRAP],
            ct[_KEY_WRAP : _KEY_WRAP + _NONCE],
            ct[_KEY_WRAP + _NONCE :],
        )
        record_key = _SUITE.decrypt(
            envelope.enc + wrapped_key, self.hpke_key, info=hpke_info(envelope.suite, envelope.key_id, record)
        )
        aad = hpke_info(envelope.suite, envelope.key_id, binding)
        return AESGCM(record_key).decrypt(nonce, body, aad)

    def private_bytes(self) -> bytes:
        """The private key as one byte string (for secret sharing): ML-KEM seed || X25519 scalar."""
        return self.mlkem768_seed + self.x25519_private


AnyPublicKey = PublicKey | SM2PublicKey
AnyKeyPair = KeyPair | SM2KeyPair


def generate_key_pair(purpose: Purpose, suite: str = "international") -> AnyKeyPair:
    """A new key pair of the named suite ("international" or "national", or the full suite name)."""
    name = SUITE_NAMES.get(suite, suite)
    if name == HPKE_SUITE:
        return KeyPair.generate(purpose)
    if name == NATIONAL_SUITE:
        return SM2KeyPair.generate(purpose)
    raise KeyFileError(f"unknown crypto suite {suite!r}")


def key_suite(envelope_suite: str) -> str:
    """The suite of the key that opens envelopes of ``envelope_suite`` (batch and record-key envelopes are
    opened by the plain HPKE key)."""
    return HPKE_SUITE if envelope_suite in (HPKE_BATCH_SUITE, HPKE_RECORD_SUITE) else envelope_suite


def key_pair_from_private_bytes(purpose: Purpose, suite: str, private: bytes) -> AnyKeyPair:
    """Inverse of ``private_bytes()`` / ``SM2KeyPair.private``: rebuild a pair from its private half."""
    if suite == HPKE_SUITE and len(private) == 96:
        return KeyPair.from_private_parts(purpose, private[:64], private[64:])
    if suite == NATIONAL_SUITE and len(private) == sm2.PRIVATE_SIZE:
        return SM2KeyPair.from_private(purpose, private)
    raise KeyFileError("private key material does not fit its suite")


def private_bytes(pair: AnyKeyPair) -> bytes:
    return pair.private_bytes() if isinstance(pair, KeyPair) else pair.private


def make_key_id(purpose: str, mlkem_public: bytes, x25519_public: bytes) -> str:
    return f"{purpose}-{hashlib.sha256(mlkem_public + x25519_public).hexdigest()[:16]}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, name: str, size: int, path: Path | str) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise KeyFileError(f"{path}: field {name!r} is not valid base64") from exc
    if len(raw) != size:
        raise KeyFileError(f"{path}: field {name!r} must decode to {size} bytes")
    return raw


def public_key_document(key: AnyPublicKey) -> dict[str, object]:
    if isinstance(key, SM2PublicKey):
        public: dict[str, str] = {"sm2": _b64(key.point)}
    else:
        public = {"mlkem768": _b64(key.mlkem768), "x25519": _b64(key.x25519)}
    return {
        "format": KEY_FORMAT,
        "suite": key.suite,
        "purpose": key.purpose,
        "key_id": key.key_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "public": public,
    }


def write_public_key(path: Path, key: AnyPublicKey) -> None:
    _write_json(path, public_key_document(key), mode=0o644)


def write_key_pair(path: Path, pair: AnyKeyPair) -> None:
    document = public_key_document(pair.public)
    if isinstance(pair, SM2KeyPair):
        document["private"] = {"sm2": _b64(pair.private)}
    else:
        document["private"] = {"mlkem768_seed": _b64(pair.mlkem768_seed), "x25519": _b64(pair.x25519_private)}
    _write_json(path, document, mode=0o600)


def _write_json(path: Path, document: dict[str, object], *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_document(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path}: not a readable JSON key file") from exc
    return _checked(document, path)


def _checked(document: object, path: Path | str) -> dict[str, object]:
    if not isinstance(document, dict) or document.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{path}: not a {KEY_FORMAT} key file")
    if document.get("suite") not in (HPKE_SUITE, NATIONAL_SUITE):
        raise KeyFileError(f"{path}: unsupported suite {document.get('suite')!r}")
    if document.get("purpose") not in PURPOSES:
        raise KeyFileError(f"{path}: purpose must be one of {', '.join(PURPOSES)}")
    return document


def _sm2_point(public: dict[str, object], path: Path | str) -> bytes:
    point = _unb64(public.get("sm2"), "public.sm2", sm2.PUBLIC_SIZE, path)
    try:
        sm2.check_public(point)
    except sm2.SM2Error as exc:
        raise KeyFileError(f"{path}: field 'public.sm2' is not a point on the SM2 curve") from exc
    return point


def read_public_key(path: Path) -> AnyPublicKey:
    return public_key_from_document(_read_document(path), path)


def public_key_from_document(document: object, path: Path | str = "public key") -> AnyPublicKey:
    """A public key from its ``public_key_document`` (a key file's content, or one handed to a worker)."""
    document = _checked(document, path)
    public = document.get("public")
    if not isinstance(public, dict):
        raise KeyFileError(f"{path}: missing 'public'")
    if document["suite"] == NATIONAL_SUITE:
        point = _sm2_point(public, path)
        purpose = str(document["purpose"])
        sm2_key = SM2PublicKey(purpose, national_key_id(purpose, point), point)
        if sm2_key.key_id != document.get("key_id"):
            raise KeyFileError(f"{path}: key_id does not match the key")
        return sm2_key
    kem = _unb64(public.get("mlkem768"), "public.mlkem768", 1184, path)
    ecdh = _unb64(public.get("x25519"), "public.x25519", 32, path)
    purpose = document["purpose"]
    key = PublicKey(purpose, make_key_id(str(purpose), kem, ecdh), kem, ecdh)  # type: ignore[arg-type]
    if key.key_id != document.get("key_id"):
        raise KeyFileError(f"{path}: key_id does not match the key")
    return key


def read_key_pair(path: Path) -> AnyKeyPair:
    document = _read_document(path)
    private = document.get("private")
    if not isinstance(private, dict):
        raise KeyFileError(f"{path}: not a private key file (no 'private')")
    if document["suite"] == NATIONAL_SUITE:
        scalar = _unb64(private.get("sm2"), "private.sm2", sm2.PRIVATE_SIZE, path)
        try:
            sm2_pair = SM2KeyPair.from_private(str(document["purpose"]), scalar)
        except sm2.SM2Error as exc:
            raise KeyFileError(f"{path}: field 'private.sm2' is not a valid SM2 private key") from exc
        if sm2_pair.public.key_id != document.get("key_id"):
            raise KeyFileError(f"{path}: key_id does not match the key")
        return sm2_pair
    seed = _unb64(private.get("mlkem768_seed"), "private.mlkem768_seed", 64, path)
    ecdh = _unb64(private.get("x25519"), "private.x25519", 32, path)
    pair = KeyPair.from_private_parts(document["purpose"], seed, ecdh)  # type: ignore[arg-type]
    if pair.public.key_id != document.get("key_id"):
        raise KeyFileError(f"{path}: key_id does not match the key")
    return pair


class CaseKeyAbsent(EnvelopeError, TemporarilyUnavailable):
    """A case-key envelope (a clue registered before compartments, not yet adopted) in a process that holds
    no case private key — the staff service runs without one. An envelope error to the code that catches
    those; a clear 503 (not a 500) to whoever asked, naming the one-off fix."""

    def __init__(self) -> None:
        TemporarilyUnavailable.__init__(
            self,
            "此线索登记于分隔加密之前，需在持有案件私钥的主机上运行 tipline compartments adopt",
            message_en="this clue predates compartments; run `tipline compartments adopt` on a host holding "
            "the case key",
        )


class KeyRing:
    """The keys one process holds: current public keys for sealing, and only the private keys its role
    may use for opening."""

    def __init__(
        self,
        *,
        case_public: AnyPublicKey,
        identity_public: AnyPublicKey,
        private: Iterable[AnyKeyPair] = (),
        contact_public: AnyPublicKey | None = None,
        escrow_public: AnyPublicKey | None = None,
    ):
        if case_public.purpose != "case" or identity_public.purpose != "identity":
            raise KeyFileError("public keys given for the wrong purpose")
        if contact_public is not None and contact_public.purpose != "contact":
            raise KeyFileError("public keys given for the wrong purpose")
        if escrow_public is not None and escrow_public.purpose != "escrow":
            raise KeyFileError("public keys given for the wrong purpose")
        self.case_public = case_public
        self.identity_public = identity_public
        self.contact_public = contact_public
        # Every new clue's content key is wrapped to it (``service.compartments``); None: no escrow yet.
        self.escrow_public = escrow_public
        self._private = {pair.public.key_id: pair for pair in private}

    def public_documents(self) -> dict[str, dict[str, object] | None]:
        """The public keys as documents (``public_key_document``): what an intake worker process gets."""
        return {
            "case": public_key_document(self.case_public),
            "identity": public_key_document(self.identity_public),
            "contact": public_key_document(self.contact_public) if self.contact_public else None,
            "escrow": public_key_document(self.escrow_public) if self.escrow_public else None,
        }

    @classmethod
    def from_public_documents(cls, documents: dict[str, dict[str, object] | None]) -> KeyRing:
        contact, escrow = documents.get("contact"), documents.get("escrow")
        return cls(
            case_public=public_key_from_document(documents["case"]),
            identity_public=public_key_from_document(documents["identity"]),
            contact_public=public_key_from_document(contact) if contact else None,
            escrow_public=public_key_from_document(escrow) if escrow else None,
        )

    def with_private(self, pairs: Iterable[AnyKeyPair]) -> KeyRing:
        """A ring that also holds ``pairs`` (e.g. an identity key rebuilt for one custodial release)."""
        ring = KeyRing(
            case_public=self.case_public,
            identity_public=self.identity_public,
            contact_public=self.contact_public,
            escrow_public=self.escrow_public,
            private=[*self._private.values(), *pairs],
        )
        return ring

    @property
    def suite(self) -> str:
        """The suite new envelopes and new keys are made with (TIPLINE_CRYPTO_SUITE, through the case key)."""
        return self.case_public.suite

    def seal_contact(self, plaintext: bytes, binding: str) -> bytes | None:
        """Contact fields for statutory feedback, sealed to the contact key; None without one."""
        return self.contact_public.seal(plaintext, binding) if self.contact_public is not None else None

    def can_open(self, purpose: Purpose) -> bool:
        return any(pair.public.purpose == purpose for pair in self._private.values())

    def key_ids(self, purpose: Purpose) -> set[str]:
        """The ids of the private keys of that purpose this ring holds (current and older ones)."""
        return {key_id for key_id, pair in self._private.items() if pair.public.purpose == purpose}

    def seal_case(self, plaintext: bytes, binding: str) -> bytes:
        return self.case_public.seal(plaintext, binding)

    def seal_case_record(self, record: str, fields: dict[str, bytes]) -> dict[str, bytes]:
        """Several case-key fields of one record, as one batch (at most one KEM operation)."""
        with sealing_batch():
            return {name: self.case_public.seal(data, f"{record}/{name}") for name, data in fields.items()}

    def seal_identity(self, plaintext: bytes, binding: str) -> bytes:
        return self.identity_public.seal(plaintext, binding)

    def open(self, data: bytes, binding: str) -> bytes:
        envelope = Envelope.from_bytes(data)
        pair = self._private.get(envelope.key_id)
        if pair is None and envelope.key_id.startswith("case-"):
            raise CaseKeyAbsent
        if pair is None:
            raise EnvelopeError("this process holds no private key for that envelope")
        if key_suite(envelope.suite) != pair.public.suite:
            raise EnvelopeError("envelope suite does not match its key")
        return pair.open(envelope, binding)
