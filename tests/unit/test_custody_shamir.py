"""Shamir sharing over GF(256): any k of n rebuild, fewer do not, and k-1 shares are uniform."""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest

from service.custody import shamir


def test_any_k_of_n_rebuild() -> None:
    secret = os.urandom(96)
    shares = shamir.split(secret, threshold=3, shares=5)
    for subset in itertools.combinations(shares, 3):
        assert shamir.combine(list(subset)) == secret
    assert shamir.combine(shares) == secret


def test_fewer_than_k_do_not_rebuild() -> None:
    secret = os.urandom(32)
    shares = shamir.split(secret, threshold=3, shares=5)
    for subset in itertools.combinations(shares, 2):
        assert shamir.combine(list(subset)) != secret


def test_one_share_is_uniform_whatever_the_secret() -> None:
    """For k=2 the first share's byte is secret xor (a * 1): uniform over 256 values for any secret."""
    counts = Counter(shamir.split(b"\x00", threshold=2, shares=2)[0].y[0] for _ in range(25_600))
    assert len(counts) == 256 and max(counts.values()) < 200


def test_field_is_a_field() -> None:
    for a in range(1, 256):
        assert shamir._mul(a, shamir._div(1, a)) == 1
    assert shamir._mul(0x57, 0x83) == 0xC1  # FIPS-197 section 4.2 example


@pytest.mark.parametrize(("threshold", "count"), [(1, 3), (4, 3), (2, 256)])
def test_bad_parameters(threshold: int, count: int) -> None:
    with pytest.raises(shamir.ShamirError):
        shamir.split(b"x", threshold=threshold, shares=count)


def test_bad_share_sets() -> None:
    a, b = shamir.split(b"secret", threshold=2, shares=2)
    with pytest.raises(shamir.ShamirError):
        shamir.combine([a])
    with pytest.raises(shamir.ShamirError):
        shamir.combine([a, a])
    with pytest.raises(shamir.ShamirError):
        shamir.combine([a, shamir.Share(b.x, b.y[:-1])])
