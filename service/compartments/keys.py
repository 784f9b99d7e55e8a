"""The compartment key hierarchy as plain functions (no database): who seals what to whom.

    password ──Argon2id──▶ KEK ──seals──▶ personal private key ◀──seals── token / session secret (HKDF)
    personal key ◀──grant── unit private key ──sealed to──▶ escrow public key (private half k-of-n)
    clue content key ──sealed to──▶ unit key, assignee's key, supervisors' keys, escrow key
    clue content key ──seals──▶ the clue's content, accused details, classification
    clue content key ──HKDF──▶ the clue's key pair ◀──sealed to its public half── messages, file keys,
                                                     additions (written by processes without the content key)

Key pairs are the key ring's own (``KeyPair`` international, ``SM2KeyPair`` national); the symmetric layer
follows the key's suite (``service.platform.crypto.wraps``). Every wrap is bound to the record it belongs
to, so a wrap copied to another clue, person, token or session does not open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.platform.crypto import sm2, wraps
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import (
    HPKE_SUITE,
    SUITE_NAMES,
    AnyKeyPair,
    AnyPublicKey,
    KeyFileError,
    KeyPair,
    Purpose,
    generate_key_pair,
    key_pair_from_private_bytes,
    key_suite,
    private_bytes,
    public_key_document,
    public_key_from_document,
)
from service.platform.crypto.national import NATIONAL_SUITE, SM2KeyPair

CLUE_FIELDS = ("content", "accused", "classification")


class KeySource(Protocol):
    """What making compartment keys needs: the suite, and the escrow public key (None before the key
    ceremony). A ``KeyRing`` is one; so is ``NewKeys``, for the command line before any key exists."""

    @property
    def suite(self) -> str: ...

    @property
    def escrow_public(self) -> AnyPublicKey | None: ...


@dataclass(frozen=True)
class NewKeys:
    suite: str
    escrow_public: AnyPublicKey | None = None


def password_binding(key_id: str) -> str:
    return f"compartment_keys/{key_id}/password"


def escrow_binding(key_id: str) -> str:
    return f"compartment_keys/{key_id}/escrow"


def grant_binding(unit_key_id: str, staff_key_id: str) -> str:
    return f"unit_key_grants/{unit_key_id}/{staff_key_id}"


def clue_key_binding(clue_id: str) -> str:
    return f"clue_keys/{clue_id}"


def field_binding(clue_id: str, name: str) -> str:
    return f"clue_sealed/{clue_id}/{name}"


def public_json(public: AnyPublicKey) -> str:
    document = public_key_document(public)
    document.pop("created_at", None)
    return json.dumps(document, sort_keys=True)


@lru_cache(maxsize=1024)  # one object per key: the national suite's data-key window lives on it
def public_from_json(text: str) -> AnyPublicKey:
    return public_key_from_document(json.loads(text))


# --- A person's private key: under the password, under a token's or session's secret -----------------------


def seal_under_password(pair: AnyKeyPair, password: str) -> tuple[bytes, bytes]:
    """(salt, wrap): the private half sealed under Argon2id(password, salt)."""
    salt = wraps.new_salt()
    kek = wraps.password_kek(password, salt)
    suite = wraps.wrap_suite(pair.public.suite)
    return salt, wraps.seal_with(kek, suite, private_bytes(pair), password_binding(pair.public.key_id))


def open_under_password(public: AnyPublicKey, salt: bytes, wrapped: bytes, password: str) -> AnyKeyPair:
    kek = wraps.password_kek(password, salt)
    raw = wraps.open_with(kek, wrapped, password_binding(public.key_id))
    return _rebuilt(public, raw)


def seal_under_secret(pair: AnyKeyPair, secret: str, label: str) -> bytes:
    """The private half sealed under a key derived from a token's or session's secret; ``label`` names the
    token or session row (``api_tokens/<id>``), so the wrap opens nowhere else."""
    suite = wraps.wrap_suite(pair.public.suite)
    kek = wraps.secret_kek(secret, label)
    return wraps.seal_with(kek, suite, _private_document(pair), f"{label}/key")


def open_under_secret(wrapped: bytes, secret: str, label: str) -> AnyKeyPair:
    raw = wraps.open_with(wraps.secret_kek(secret, label), wrapped, f"{label}/key")
    document = json.loads(raw)
    return key_pair_from_private_bytes("staff", document["suite"], bytes.fromhex(document["private"]))


def _private_document(pair: AnyKeyPair) -> bytes:
    # The suite travels with the private half: a token or session wrap needs no database row to rebuild it.
    return json.dumps({"suite": pair.public.suite, "private": private_bytes(pair).hex()}).encode()


def _rebuilt(public: AnyPublicKey, raw: bytes) -> AnyKeyPair:
    pair = key_pair_from_private_bytes(public.purpose, public.suite, raw)
    if pair.public.key_id != public.key_id:
        raise EnvelopeError("the private half does not belong to that public key")
    return pair


# --- A unit's private key: granted to members, sealed to the escrow -----------------------------------------


def seal_private_to(pair: AnyKeyPair, recipient: AnyPublicKey, binding: str) -> bytes:
    return recipient.seal(private_bytes(pair), binding)


def open_private(opener: AnyKeyPair, public: AnyPublicKey, wrapped: bytes, binding: str) -> AnyKeyPair:
    return _rebuilt(public, open_sealed(opener, wrapped, binding))


def open_sealed(opener: AnyKeyPair, wrapped: bytes, binding: str) -> bytes:
    envelope = Envelope.from_bytes(wrapped)
    if envelope.key_id != opener.public.key_id or key_suite(envelope.suite) != opener.public.suite:
        raise EnvelopeError("sealed to another key")
    return opener.open(envelope, binding)


# --- A clue's content key and fields ---------------------------------------------------------------


@dataclass(frozen=True)
class SealedClue:
    """A new clue's fields sealed under its fresh content key, and the public half of the clue's key pair.
    The content key lives only until intake has wrapped it to its first readers, in the process that held
    the plaintext anyway."""

    content_key: bytes = field(repr=False)
    suite: str
    fields: dict[str, bytes]
    public: str  # the clue key pair's public key document (JSON)


def seal_clue(clue_id: str, key_suite_name: str, fields: dict[str, bytes]) -> SealedClue:
    content_key = wraps.new_content_key()
    suite = wraps.wrap_suite(key_suite_name)
    sealed = {
        name: wraps.seal_with(content_key, suite, data, field_binding(clue_id, name))
        for name, data in fields.items()
    }
    public = public_json(clue_pair(content_key, clue_id, key_suite_name).public)
    return SealedClue(content_key=content_key, suite=suite, fields=sealed, public=public)


# --- A clue's own key pair: what processes without the content key seal to --------------------------------

_CLUE_PAIR_INFO = b"tipline/clue-pair\x00"


def clue_pair(content_key: bytes, clue_id: str, suite: str) -> AnyKeyPair:
    """The clue's key pair, derived from its content key (HKDF, bound to the clue id): whoever holds a wrap
    of the content key holds the private half too, so no second wrap is needed; the public half lets
    intake, mail ingest, the status page and the hotline seal follow-ups, file keys and additions that only
    the clue's readers open. ``suite``: "international", "national" or a full suite name."""
    name = SUITE_NAMES.get(suite, suite)
    info = _CLUE_PAIR_INFO + clue_id.encode()
    if name == HPKE_SUITE:  # ML-KEM-768 seed (64 bytes) || X25519 scalar (32 bytes)
        material = HKDF(hashes.SHA256(), 96, None, info).derive(content_key)
        return KeyPair.from_private_parts("clue", material[:64], material[64:])
    if name == NATIONAL_SUITE:
        for counter in range(256):  # a zero scalar is ~2^-256 likely; the counter only makes it total
            raw = HKDF(hashes.SM3(), 32, None, info + bytes([counter])).derive(content_key)
            d = int.from_bytes(raw, "big") % (sm2.N - 1)  # [0, n-2]: signing needs 1 + d invertible
            if d:
                return SM2KeyPair.from_private("clue", d.to_bytes(32, "big"))
    raise KeyFileError(f"unknown crypto suite {suite!r}")


def clue_suite(sealed_field: bytes) -> str:
    """The key suite of a clue, read off one of its sealed fields (the wrap suite follows the key suite)."""
    return NATIONAL_SUITE if Envelope.from_bytes(sealed_field).suite == wraps.SM4_SUITE else HPKE_SUITE


def sealed_to_clue(data: bytes) -> bool:
    """Whether ``data`` is sealed to a clue's own key (else: the case key, as before compartments)."""
    return Envelope.from_bytes(data).key_id.startswith("clue-")


def open_clue_field(content_key: bytes, clue_id: str, name: str, data: bytes) -> bytes:
    return wraps.open_with(content_key, data, field_binding(clue_id, name))


def wrap_content_key(recipient: AnyPublicKey, clue_id: str, content_key: bytes) -> bytes:
    return recipient.seal(content_key, clue_key_binding(clue_id))


def unwrap_content_key(opener: AnyKeyPair, clue_id: str, wrapped: bytes) -> bytes:
    return open_sealed(opener, wrapped, clue_key_binding(clue_id))


@dataclass(frozen=True)
class Unlocked:
    """The keys one request holds: the person's own and the unit keys granted to them."""

    personal: AnyKeyPair = field(repr=False)
    units: tuple[AnyKeyPair, ...] = field(default=(), repr=False)

    @property
    def pairs(self) -> dict[str, AnyKeyPair]:
        return {pair.public.key_id: pair for pair in (self.personal, *self.units)}

    def content_key(self, clue_id: str, wrapped_by_key: dict[str, bytes]) -> bytes | None:
        """The clue's content key through whichever of its wraps this request holds a key for."""
        for key_id, pair in self.pairs.items():
            if key_id in wrapped_by_key:
                return unwrap_content_key(pair, clue_id, wrapped_by_key[key_id])
        return None


def generate(purpose: Purpose, suite: str) -> AnyKeyPair:
    """A new compartment key pair of the named key suite (the one the key ring seals with)."""
    return generate_key_pair(purpose, suite)
