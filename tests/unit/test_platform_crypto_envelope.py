"""Envelopes: round trip, binding, tampering, key files."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.platform.crypto.envelope import Envelope, EnvelopeError, hpke_info
from service.platform.crypto.keys import (
    _SUITE,
    HPKE_BATCH_SUITE,
    HPKE_RECORD_SUITE,
    HPKE_SUITE,
    KeyFileError,
    KeyPair,
    KeyRing,
    read_key_pair,
    read_public_key,
    sealing_batch,
    write_key_pair,
    write_public_key,
)


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    case, identity = KeyPair.generate("case"), KeyPair.generate("identity")
    return KeyRing(case_public=case.public, identity_public=identity.public, private=[case, identity])


def test_round_trip_names_suite_and_key(ring: KeyRing) -> None:
    sealed = ring.seal_case("举报内容".encode(), "clues/1/content")
    envelope = Envelope.from_bytes(sealed)
    assert envelope.suite == HPKE_SUITE and envelope.key_id == ring.case_public.key_id
    assert len(envelope.enc) == 1120
    assert ring.open(sealed, "clues/1/content") == "举报内容".encode()
    assert Envelope.from_bytes(envelope.to_bytes()) == envelope
    assert set(envelope.to_json()) == {"suite", "key_id", "enc", "ct"}


def test_each_seal_is_fresh(ring: KeyRing) -> None:
    assert ring.seal_case(b"same", "b") != ring.seal_case(b"same", "b")


@pytest.mark.parametrize("other", ["clues/2/content", "clues/1/identity", "", "clues/1/content "])
def test_moved_to_another_record_or_field_fails(ring: KeyRing, other: str) -> None:
    sealed = ring.seal_case(b"secret", "clues/1/content")
    with pytest.raises(EnvelopeError):
        ring.open(sealed, other)


def test_tampered_bytes_fail(ring: KeyRing) -> None:
    sealed = bytearray(ring.seal_identity(b"13800138000", "clues/1/identity"))
    for position in (len(sealed) - 1, len(sealed) - 20, 60, 200):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(EnvelopeError):
            ring.open(bytes(tampered), "clues/1/identity")


def test_relabelled_key_id_or_suite_fails(ring: KeyRing) -> None:
    sealed = Envelope.from_bytes(ring.seal_case(b"x", "b"))
    other_key = ring.identity_public.key_id
    with pytest.raises(EnvelopeError):
        ring.open(Envelope(sealed.suite, other_key, sealed.enc, sealed.ct).to_bytes(), "b")
    with pytest.raises(EnvelopeError):
        ring.open(Envelope("other-suite", sealed.key_id, sealed.enc, sealed.ct).to_bytes(), "b")


@pytest.mark.parametrize(
    "junk", [b"", b"TLE1", b"TLE1\x05ab", b"XXXX" + b"\x00" * 50, b"TLE1\x01a\x01b\xff\xff"]
)
def test_malformed_envelopes_are_refused(ring: KeyRing, junk: bytes) -> None:
    with pytest.raises(EnvelopeError):
        ring.open(junk, "b")


def test_a_public_only_ring_cannot_open() -> None:
    case, identity = KeyPair.generate("case"), KeyPair.generate("identity")
    public_only = KeyRing(case_public=case.public, identity_public=identity.public)
    sealed = public_only.seal_case(b"x", "b")
    assert not public_only.can_open("case")
    with pytest.raises(EnvelopeError):
        public_only.open(sealed, "b")
    assert (
        KeyRing(case_public=case.public, identity_public=identity.public, private=[case]).open(sealed, "b")
        == b"x"
    )


def test_key_files_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pair = KeyPair.generate("identity")
    write_key_pair(tmp_path / "id.private.json", pair)
    write_public_key(tmp_path / "id.public.json", pair.public)
    assert (tmp_path / "id.private.json").stat().st_mode & 0o777 == 0o600
    assert read_key_pair(tmp_path / "id.private.json").public == pair.public
    assert read_public_key(tmp_path / "id.public.json") == pair.public
    with pytest.raises(KeyFileError, match="not a private key file"):
        read_key_pair(tmp_path / "id.public.json")


def test_bad_key_files_name_the_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pair = KeyPair.generate("case")
    path = tmp_path / "k.json"
    write_public_key(path, pair.public)
    document = json.loads(path.read_text())
    document["key_id"] = "case-0000000000000000"
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="key_id does not match"):
        read_public_key(path)
    document["public"]["x25519"] = "AAAA"
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="public.x25519"):
        read_public_key(path)
    path.write_text("not json")
    with pytest.raises(KeyFileError):
        read_public_key(path)
    with pytest.raises(KeyFileError, match="not found"):
        read_public_key(tmp_path / "missing.json")


def test_record_fields_share_one_kem_and_stay_bound_to_their_field(ring: KeyRing) -> None:
    sealed = ring.seal_case_record("clues/7", {"content": b"text", "accused": b"name"})
    content, accused = Envelope.from_bytes(sealed["content"]), Envelope.from_bytes(sealed["accused"])
    assert content.suite == accused.suite == HPKE_BATCH_SUITE
    assert content.enc == accused.enc  # one KEM operation for the record
    assert ring.open(sealed["content"], "clues/7/content") == b"text"
    assert ring.open(sealed["accused"], "clues/7/accused") == b"name"
    for wrong in ("clues/7/accused", "clues/8/content", "clues/7", "clues/7/content/x"):
        with pytest.raises(EnvelopeError):
            ring.open(sealed["content"], wrong)
    tampered = bytearray(sealed["content"])
    tampered[-3] ^= 1
    with pytest.raises(EnvelopeError):
        ring.open(bytes(tampered), "clues/7/content")
    # The wrapped batch key swapped in from another batch does not open either.
    other = Envelope.from_bytes(ring.seal_case_record("clues/9", {"content": b"x"})["content"])
    assert other.enc != content.enc  # outside a batch, each record is a batch of its own
    spliced = Envelope(content.suite, content.key_id, other.enc, other.ct[:48] + content.ct[48:]).to_bytes()
    with pytest.raises(EnvelopeError):
        ring.open(spliced, "clues/7/content")


def test_a_sealing_batch_shares_one_kem_per_key_and_keeps_every_field_bound(ring: KeyRing) -> None:
    with sealing_batch():
        first = ring.seal_case_record("clues/1", {"content": b"one"})["content"]
        with sealing_batch():  # nested: joins the outer batch
            second = ring.seal_case(b"two", "clues/2/content")
        identity = ring.seal_identity(b"13800138000", "clues/2/identity")
    after = ring.seal_case(b"three", "clues/3/content")
    envelopes = [Envelope.from_bytes(data) for data in (first, second, identity, after)]
    assert envelopes[0].enc == envelopes[1].enc  # one encapsulation to the case key for the batch
    assert envelopes[2].enc != envelopes[0].enc  # the identity key gets its own
    assert [e.suite for e in envelopes] == [HPKE_BATCH_SUITE] * 3 + [HPKE_SUITE]  # batch over: plain HPKE
    assert ring.open(first, "clues/1/content") == b"one"
    assert ring.open(second, "clues/2/content") == b"two"
    assert ring.open(identity, "clues/2/identity") == b"13800138000"
    with pytest.raises(EnvelopeError):  # a record's field moved onto another record of the same batch
        ring.open(first, "clues/2/content")
    # Another record's salt and body spliced behind this record's wrapped key: still bound to its field.
    one, two = envelopes[0], envelopes[1]
    spliced = Envelope(one.suite, one.key_id, one.enc, one.ct[:48] + two.ct[48:]).to_bytes()
    with pytest.raises(EnvelopeError):
        ring.open(spliced, "clues/1/content")
    assert ring.open(spliced, "clues/2/content") == b"two"  # (it is simply record 2's envelope)
    relabelled = Envelope(HPKE_SUITE, one.key_id, one.enc, one.ct).to_bytes()
    with pytest.raises(EnvelopeError):
        ring.open(relabelled, "clues/1/content")


def test_record_key_envelopes_sealed_before_batches_still_open(ring: KeyRing) -> None:
    """The earlier record-key layout (one HPKE-wrapped key per record) stays readable."""
    case = ring.case_public
    record_key, nonce = os.urandom(32), os.urandom(12)
    wrapped = _SUITE.encrypt(
        record_key, case.hpke_key, info=hpke_info(HPKE_RECORD_SUITE, case.key_id, "clues/5")
    )
    body = AESGCM(record_key).encrypt(
        nonce, b"old", hpke_info(HPKE_RECORD_SUITE, case.key_id, "clues/5/content")
    )
    old = Envelope(HPKE_RECORD_SUITE, case.key_id, wrapped[:1120], wrapped[1120:] + nonce + body).to_bytes()
    assert ring.open(old, "clues/5/content") == b"old"
    with pytest.raises(EnvelopeError):
        ring.open(old, "clues/6/content")
