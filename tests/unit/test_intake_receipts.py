"""Receipt codes: format, entropy, normalisation, keyed hashing."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from service.intake.receipts import (
    MalformedReceipt,
    format_receipt,
    hashes_match,
    new_receipt_code,
    normalise_receipt,
    receipt_hash,
)


def test_code_has_at_least_80_bits_and_groups_for_reading_aloud() -> None:
    code = new_receipt_code()
    assert re.fullmatch(r"\d{25}", code)
    assert len(code) * math.log2(10) >= 80
    assert re.fullmatch(r"\d{5}( \d{5}){4}", format_receipt(code))


def test_codes_are_uniform_and_distinct() -> None:
    codes = [new_receipt_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    digits = Counter("".join(codes))
    expected = 2000 * 25 / 10
    assert all(abs(count - expected) < expected * 0.1 for count in digits.values())


@pytest.mark.parametrize(
    "typed",
    [
        "12345 67890 12345 67890 12345",
        "12345-67890-12345-67890-12345",
        "１２３４５６７８９０１２３４５６７８９０１２３４５",
        " 1234567890123456789012345 ",
    ],
)
def test_what_people_type_is_accepted(typed: str) -> None:
    assert normalise_receipt(typed) == "1234567890123456789012345"


@pytest.mark.parametrize(
    "typed",
    ["", "123", "12345 67890 12345 67890 1234", "1234567890123456789012345 6", "abcde" * 5, "١٢٣٤٥" * 5],
)
def test_malformed_codes_are_refused(typed: str) -> None:
    with pytest.raises(MalformedReceipt):
        normalise_receipt(typed)


def test_hash_is_keyed_and_compared_in_constant_time() -> None:
    code = new_receipt_code()
    a, b = receipt_hash(b"k1" * 16, code), receipt_hash(b"k2" * 16, code)
    assert a != b and len(a) == 32
    assert hashes_match(a, receipt_hash(b"k1" * 16, code))
    assert not hashes_match(a, b)
