"""Shamir secret sharing over GF(2^8), byte by byte (the field and polynomial of AES: x^8+x^4+x^3+x+1).

A secret of L bytes becomes n shares of L bytes each, with x-coordinates 1..n; any k of them rebuild it by
Lagrange interpolation at 0, and k-1 of them say nothing about it (every byte's polynomial has k-1 uniformly
random coefficients from :mod:`secrets`). A share is only as good as the channel that carries it: shares
are encrypted to their holders' passphrases by ``service.custody.shares``.

Field arithmetic uses log/antilog tables. Lookups indexed by secret bytes are not constant-time; this code
runs on the custodial machine during a key ceremony or a release, not on a server an attacker can time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

_EXP = [0] * 510
_LOG = [0] * 256


def _init_tables() -> None:
    value = 1
    for power in range(255):
        _EXP[power] = value
        _LOG[value] = power
        # multiply by the generator 3: value * 2 xor value, reduced by the AES polynomial
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= 0x11B
        value = doubled ^ value
    for power in range(255, 510):
        _EXP[power] = _EXP[power - 255]


_init_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(256)")
    if a == 0:
        return 0
    return _EXP[_LOG[a] + 255 - _LOG[b]]


class ShamirError(ValueError):
    """Shares are too few, inconsistent or malformed."""


@dataclass(frozen=True)
class Share:
    x: int  # 1..255
    y: bytes = b""


def split(secret: bytes, *, threshold: int, shares: int) -> list[Share]:
    """Split ``secret`` into ``shares`` shares, any ``threshold`` of which rebuild it."""
    if not secret:
        raise ShamirError("nothing to split")
    if not 2 <= threshold <= shares <= 255:
        raise ShamirError("need 2 <= threshold <= shares <= 255")
    ys = [bytearray(len(secret)) for _ in range(shares)]
    for index, byte in enumerate(secret):
        coefficients = [byte] + [secrets.randbelow(256) for _ in range(threshold - 1)]
        for share_index in range(shares):
            x, acc = share_index + 1, 0
            for coefficient in reversed(coefficients):  # Horner
                acc = _mul(acc, x) ^ coefficient
            ys[share_index][index] = acc
    return [Share(i + 1, bytes(y)) for i, y in enumerate(ys)]


def combine(shares: list[Share]) -> bytes:
    """Rebuild the secret from at least ``threshold`` distinct shares. With fewer, the result is garbage:
    callers must check it (``service.custody`` compares the rebuilt key with the published key id)."""
    if len(shares) < 2:
        raise ShamirError("at least two shares are needed")
    xs = [s.x for s in shares]
    if len(set(xs)) != len(xs) or not all(1 <= x <= 255 for x in xs):
        raise ShamirError("shares must have distinct x between 1 and 255")
    length = len(shares[0].y)
    if length == 0 or any(len(s.y) != length for s in shares):
        raise ShamirError("shares differ in length")
    # Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); subtraction is xor in GF(2^8).
    basis = []
    for i, xi in enumerate(xs):
        numerator, denominator = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                numerator = _mul(numerator, xj)
                denominator = _mul(denominator, xj ^ xi)
        basis.append(_div(numerator, denominator))
    out = bytearray(length)
    for index in range(length):
        acc = 0
        for share, weight in zip(shares, basis, strict=True):
            acc ^= _mul(share.y[index], weight)
        out[index] = acc
    return bytes(out)
