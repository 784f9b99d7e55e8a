"""The compartment key hierarchy's wraps, in both suites: each opens only with its key and at its binding."""

from __future__ import annotations

import pytest

from service.compartments import keys as ck
from service.platform.crypto import wraps
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import HPKE_SUITE
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
