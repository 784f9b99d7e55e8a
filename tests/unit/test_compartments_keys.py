"""The compartment key hierarchy's wraps, in both suites: each opens only with its key and at its binding."""

from __future__ import annotations

import pytest

from service.compartments import keys as ck
from service.platform.crypto import wraps
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import HPKE_SUITE, KeyFileError
from service.platform.crypto.national import NATIONAL_SUITE

SUITES = [HPKE_SUITE, NATIONAL_SUITE]


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    # The parameters are the production ones elsewhere; here only the wiring is under test.
    monkeypatch.setattr(wraps, "ARGON2_MEMORY_KIB", 1024)
    monkeypatch.setattr(wraps, "ARGON2_ITERATIONS", 1)


@pytest.mark.parametrize("suite", SUITES)
def test_clue_key_reaches_only_its_recipients(suite: str) -> None:
    unit, staff, outsider = (
        ck.generate("unit", suite),
        ck.generate("staff", suite),
        ck.generate("staff", suite),
    )
    sealed = ck.seal_clue("clue-1", suite, {"content": "举报内容".encode(), "accused": b"{}"})
    assert "举报内容".encode() not in sealed.fields["content"]
    wrapped = {
        unit.public.key_id: ck.wrap_content_key(unit.public, "clue-1", sealed.content_key),
        staff.public.key_id: ck.wrap_content_key(staff.public, "clue-1", sealed.content_key),
    }
    for holder in (ck.Unlocked(unit), ck.Unlocked(staff), ck.Unlocked(outsider, units=(unit,))):
        key = holder.content_key("clue-1", wrapped)
        assert key is not None
        assert ck.open_clue_field(key, "clue-1", "content", sealed.fields["content"]).decode() == "举报内容"
    assert ck.Unlocked(outsider).content_key("clue-1", wrapped) is None
    # A wrap moved to another clue, or a field to another clue or field, does not open.
    with pytest.raises(EnvelopeError):
        ck.unwrap_content_key(staff, "clue-2", wrapped[staff.public.key_id])
    with pytest.raises(EnvelopeError):
        ck.open_clue_field(sealed.content_key, "clue-2", "content", sealed.fields["content"])
    with pytest.raises(EnvelopeError):
        ck.open_clue_field(sealed.content_key, "clue-1", "accused", sealed.fields["content"])
    # Sealed to someone else's key: refused before any decryption.
    with pytest.raises(EnvelopeError):
        ck.unwrap_content_key(outsider, "clue-1", wrapped[staff.public.key_id])


@pytest.mark.parametrize("suite", SUITES)
def test_symmetric_layer_follows_the_key_suite(suite: str) -> None:
    sealed = ck.seal_clue("c", suite, {"content": b"x"})
    expected = wraps.SM4_SUITE if suite == NATIONAL_SUITE else wraps.AES_SUITE
    assert Envelope.from_bytes(sealed.fields["content"]).suite == expected


@pytest.mark.parametrize("suite", SUITES)
def test_personal_key_under_password(suite: str) -> None:
    pair = ck.generate("staff", suite)
    salt, wrapped = ck.seal_under_password(pair, "correct horse battery")
    opened = ck.open_under_password(pair.public, salt, wrapped, "correct horse battery")
    assert opened.public.key_id == pair.public.key_id
    with pytest.raises(EnvelopeError):
        ck.open_under_password(pair.public, salt, wrapped, "correct horse batterz")
    other = ck.generate("staff", suite)
    with pytest.raises(EnvelopeError):  # a wrap copied onto another person's key row
        ck.open_under_password(other.public, salt, wrapped, "correct horse battery")


@pytest.mark.parametrize("suite", SUITES)
def test_personal_key_under_token_secret(suite: str) -> None:
    pair = ck.generate("staff", suite)
    wrapped = ck.seal_under_secret(pair, "tlk_secret", "api_tokens/t1")
    assert ck.open_under_secret(wrapped, "tlk_secret", "api_tokens/t1").public.key_id == pair.public.key_id
    for secret, label in (("tlk_other", "api_tokens/t1"), ("tlk_secret", "api_tokens/t2")):
        with pytest.raises(EnvelopeError):
            ck.open_under_secret(wrapped, secret, label)


@pytest.mark.parametrize("suite", SUITES)
def test_unit_key_granted_and_escrowed(suite: str) -> None:
    unit, member, escrow = (
        ck.generate("unit", suite),
        ck.generate("staff", suite),
        ck.generate("escrow", suite),
    )
    grant = ck.seal_private_to(
        unit, member.public, ck.grant_binding(unit.public.key_id, member.public.key_id)
    )
    opened = ck.open_private(
        member, unit.public, grant, ck.grant_binding(unit.public.key_id, member.public.key_id)
    )
    assert opened.public.key_id == unit.public.key_id
    escrowed = ck.seal_private_to(unit, escrow.public, ck.escrow_binding(unit.public.key_id))
    recovered = ck.open_private(escrow, unit.public, escrowed, ck.escrow_binding(unit.public.key_id))
    assert recovered.public.key_id == unit.public.key_id
    with pytest.raises(EnvelopeError):
        ck.open_private(member, unit.public, escrowed, ck.escrow_binding(unit.public.key_id))
    with pytest.raises(EnvelopeError):  # a grant replayed as another member's
        ck.open_private(member, unit.public, grant, ck.grant_binding(unit.public.key_id, "staff-x"))


@pytest.mark.parametrize("suite", SUITES)
def test_a_wrap_of_the_content_key_gives_the_clue_private_key(suite: str) -> None:
    """The clue's key pair is derived from its content key: the public half stored at intake is the one a
    holder of any wrap rebuilds; another clue, or another content key, gives another pair."""
    staff = ck.generate("staff", suite)
    sealed = ck.seal_clue("clue-1", suite, {"content": "举报内容".encode()})
    assert ck.clue_suite(sealed.fields["content"]) == suite
    wrapped = {staff.public.key_id: ck.wrap_content_key(staff.public, "clue-1", sealed.content_key)}
    key = ck.Unlocked(staff).content_key("clue-1", wrapped)
    assert key is not None
    pair = ck.clue_pair(key, "clue-1", suite)
    assert ck.public_json(pair.public) == sealed.public
    assert pair.public.key_id.startswith("clue-") and pair.public.suite == suite
    assert ck.clue_pair(key, "clue-1", suite).public.key_id == pair.public.key_id  # deterministic
    assert ck.clue_pair(key, "clue-2", suite).public.key_id != pair.public.key_id
    assert ck.clue_pair(wraps.new_content_key(), "clue-1", suite).public.key_id != pair.public.key_id


@pytest.mark.parametrize("suite", SUITES)
def test_a_seal_to_the_clue_opens_only_with_its_key_and_binding(suite: str) -> None:
    content_key = wraps.new_content_key()
    pair = ck.clue_pair(content_key, "clue-1", suite)
    public = ck.public_from_json(ck.public_json(pair.public))  # as intake reads it from clue_sealed.public
    sealed = public.seal("补充：他还收了购物卡".encode(), "messages/m1/body")
    assert ck.sealed_to_clue(sealed)
    assert ck.open_sealed(pair, sealed, "messages/m1/body").decode() == "补充：他还收了购物卡"
    with pytest.raises(EnvelopeError):  # bound to its record: not another message, not another field
        ck.open_sealed(pair, sealed, "messages/m2/body")
    with pytest.raises(EnvelopeError):
        ck.open_sealed(pair, sealed, "attachments/m1/key")
    for other in (ck.clue_pair(content_key, "clue-2", suite), ck.generate("staff", suite)):
        with pytest.raises(EnvelopeError):  # another clue's key (or anyone else's) does not open it
            ck.open_sealed(other, sealed, "messages/m1/body")
    assert not ck.sealed_to_clue(ck.generate("case", suite).public.seal(b"x", "messages/m1/body"))


def test_clue_pair_refuses_an_unknown_suite() -> None:
    with pytest.raises(KeyFileError):
        ck.clue_pair(wraps.new_content_key(), "clue-1", "rot13")
