"""SM2 public-key encryption and signatures (GB/T 32918): the curve's constants from ``gmssl``, the point
arithmetic our own (below).

What ``gmssl`` gets wrong for our use is done here instead, and must stay here:

- Randomness: ``gmssl`` draws the ephemeral scalar from :mod:`random` (Mersenne Twister, predictable);
  a predictable ``k`` reveals the plaintext of an encryption and the private key from a signature. Every
  ``k`` here comes from :mod:`secrets`.
- Decryption: ``gmssl`` computes but never compares the check value ``C3``, and does not check that ``C1``
  lies on the curve. Here both are checked (``C3`` in constant time) before any plaintext is returned.
- Signatures: ``r`` and ``s`` are range-checked before verification.
- Point multiplication: its Jacobian arithmetic now and then loses a coordinate's leading digits and fails
  (seen verifying a valid signature); ours is plain affine double-and-add.

Ciphertext layout is the current standard order ``C1 || C3 || C2`` (GB/T 35276), with ``C1`` as an
uncompressed point (``04 || x || y``, 65 bytes) and ``C3`` the 32-byte SM3 check value. OpenSSL writes the
same values as DER ``SEQUENCE {x INTEGER, y INTEGER, C3 OCTET STRING, C2 OCTET STRING}``; :func:`to_der` and
:func:`from_der` convert (tests use them to talk to ``openssl pkeyutl``).
"""

from __future__ import annotations

import hmac
import secrets
from functools import cache

from cryptography.hazmat.primitives import hashes
from gmssl import sm2 as _gmssl_sm2

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_G_HEX = _gmssl_sm2.default_ecc_table["g"]
DEFAULT_ID = b"1234567812345678"  # the standard's default signer id, as OpenSSL and gmssl use it

PRIVATE_SIZE = 32
PUBLIC_SIZE = 65  # 04 || x || y
OVERHEAD = PUBLIC_SIZE + 32  # C1 and C3 around C2


class SM2Error(ValueError):
    """An SM2 key, ciphertext or signature is malformed or fails its check. Never carries key material."""


Point = tuple[int, int] | None  # affine (x, y); None is the point at infinity


def _add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _times(k: int, point: Point) -> Point:
    """k * point by double-and-add. Our own rather than gmssl's: its Jacobian arithmetic now and then loses a
    coordinate's leading digits and fails (seen on a valid signature's verification)."""
    result: Point = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _from_hex(point_hex: str) -> Point:
    return int(point_hex[:64], 16), int(point_hex[64:128], 16)


@cache
def _base_table() -> tuple[tuple[Point, ...], ...]:
    """``[i][j] = j * 16**i * G`` for the 64 hex digits of a scalar: a multiple of the base point (a new key's
    public half, an encryption's C1, a signature) is then 64 additions instead of ~384 doublings and
    additions. Built once per process (~1,000 additions)."""
    rows = []
    base = _from_hex(_G_HEX)
    for _ in range(64):
        row: list[Point] = [None]
        for _ in range(15):
            row.append(_add(row[-1], base))
        rows.append(tuple(row))
        base = _add(row[-1], base)
    return tuple(rows)


def _times_base(k: int) -> Point:
    """k * G from the table, summed in Jacobian coordinates (x = X/Z², y = Y/Z³) so that only the final
    conversion costs a modular inverse; the rare sum of equal points falls back to the affine ``_add``."""
    acc: tuple[int, int, int] | None = None
    for i, row in enumerate(_base_table()):
        point = row[(k >> (4 * i)) & 15]
        if point is None:
            continue
        if acc is None:
            acc = (point[0], point[1], 1)
            continue
        x1, y1, z1 = acc
        zz = z1 * z1 % P
        h = (point[0] * zz - x1) % P
        r = (point[1] * zz * z1 - y1) % P
        if h == 0:
            acc = _jacobian(_add(_affine(acc), point))
            continue
        hh = h * h % P
        hhh = h * hh % P
        v = x1 * hh % P
        x3 = (r * r - hhh - 2 * v) % P
        acc = (x3, (r * (v - x3) - y1 * hhh) % P, z1 * h % P)
    return _affine(acc) if acc is not None else None


def _affine(point: tuple[int, int, int]) -> Point:
    x, y, z = point
    inverse = pow(z, -1, P)
    zz = inverse * inverse % P
    return x * zz % P, y * zz * inverse % P


def _jacobian(point: Point) -> tuple[int, int, int] | None:
    return None if point is None else (point[0], point[1], 1)


def _mul(k: int, point_hex: str) -> str:
    """k * point, both as 128-hex-digit x||y strings."""
    result = _times_base(k) if point_hex == _G_HEX else _times(k, _from_hex(point_hex))
    if result is None:
        raise SM2Error("point multiplication gave the point at infinity")
    return f"{result[0]:064x}{result[1]:064x}"


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _point_hex(public: bytes) -> str:
    if len(public) != PUBLIC_SIZE or public[0] != 4:
        raise SM2Error("an SM2 public key is an uncompressed point of 65 bytes")
    x, y = int.from_bytes(public[1:33], "big"), int.from_bytes(public[33:], "big")
    if not _on_curve(x, y):
        raise SM2Error("point is not on the SM2 curve")
    return public[1:].hex()


def check_public(public: bytes) -> None:
    """Raise :class:`SM2Error` unless ``public`` is an uncompressed point on the curve."""
    _point_hex(public)


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _kdf(z: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += _sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])


def _random_scalar() -> int:
    return secrets.randbelow(N - 1) + 1


def generate_private() -> bytes:
    """A fresh private scalar d in [1, n-2] (n-1 is excluded: signing needs (1+d) invertible)."""
    return (secrets.randbelow(N - 2) + 1).to_bytes(32, "big")


def public_from_private(private: bytes) -> bytes:
    d = _private_scalar(private)
    return b"\x04" + bytes.fromhex(_mul(d, _G_HEX))


def _private_scalar(private: bytes) -> int:
    if len(private) != PRIVATE_SIZE:
        raise SM2Error("an SM2 private key is 32 bytes")
    d = int.from_bytes(private, "big")
    if not 1 <= d <= N - 2:
        raise SM2Error("SM2 private scalar out of range")
    return d


def encrypt(public: bytes, message: bytes) -> bytes:
    """SM2 public-key encryption; returns ``C1 || C3 || C2``."""
    if not message:
        raise SM2Error("nothing to encrypt")
    point = _point_hex(public)
    while True:
        k = _random_scalar()
        c1 = bytes.fromhex(_mul(k, _G_HEX))
        shared = bytes.fromhex(_mul(k, point))
        t = _kdf(shared, len(message))
        if any(t):
            break
    c2 = bytes(m ^ s for m, s in zip(message, t, strict=True))
    c3 = _sm3(shared[:32] + message + shared[32:])
    return b"\x04" + c1 + c3 + c2


def decrypt(private: bytes, ciphertext: bytes) -> bytes:
    """Inverse of :func:`encrypt`; raises :class:`SM2Error` unless ``C1`` is on the curve and ``C3``
    matches."""
    if len(ciphertext) <= OVERHEAD:
        raise SM2Error("SM2 ciphertext too short")
    c1, c3, c2 = ciphertext[:PUBLIC_SIZE], ciphertext[PUBLIC_SIZE:OVERHEAD], ciphertext[OVERHEAD:]
    shared = bytes.fromhex(_mul(_private_scalar(private), _point_hex(c1)))
    t = _kdf(shared, len(c2))
    if not any(t):
        raise SM2Error("SM2 ciphertext failed its check")
    message = bytes(c ^ s for c, s in zip(c2, t, strict=True))
    if not hmac.compare_digest(_sm3(shared[:32] + message + shared[32:]), c3):
        raise SM2Error("SM2 ciphertext failed its check")
    return message


def _za(public: bytes, signer_id: bytes) -> bytes:
    bits = (len(signer_id) * 8).to_bytes(2, "big")
    g = bytes.fromhex(_G_HEX)
    return _sm3(bits + signer_id + A.to_bytes(32, "big") + B.to_bytes(32, "big") + g + public[1:])


def sign(private: bytes, message: bytes, *, signer_id: bytes = DEFAULT_ID) -> bytes:
    """SM2 signature with SM3 (``r || s``, 64 bytes) over ``SM3(Z_A || message)``."""
    d = _private_scalar(private)
    public = public_from_private(private)
    e = int.from_bytes(_sm3(_za(public, signer_id) + message), "big")
    while True:
        k = _random_scalar()
        x1 = int(_mul(k, _G_HEX)[:64], 16)
        r = (e + x1) % N
        if r == 0 or r + k == N:
            continue
        s = (pow(1 + d, -1, N) * (k - r * d)) % N
        if s:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(public: bytes, message: bytes, signature: bytes, *, signer_id: bytes = DEFAULT_ID) -> bool:
    if len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (1 <= r < N and 1 <= s < N):
        return False
    try:
        point = _point_hex(public)
    except SM2Error:
        return False
    e = int.from_bytes(_sm3(_za(public, signer_id) + message), "big")
    t = (r + s) % N
    if t == 0:
        return False
    summed = _add(_times(s, _from_hex(_G_HEX)), _times(t, _from_hex(point)))
    return summed is not None and (e + summed[0]) % N == r


# --- DER forms, as OpenSSL reads and writes them -------------------------------------------------------


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_int(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return _der(0x02, body)


def to_der(ciphertext: bytes) -> bytes:
    """``C1 || C3 || C2`` → OpenSSL's DER SM2 ciphertext."""
    x, y = int.from_bytes(ciphertext[1:33], "big"), int.from_bytes(ciphertext[33:65], "big")
    c3, c2 = ciphertext[PUBLIC_SIZE:OVERHEAD], ciphertext[OVERHEAD:]
    return _der(0x30, _der_int(x) + _der_int(y) + _der(0x04, c3) + _der(0x04, c2))


def _read_tlv(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    if pos + 2 > len(data) or data[pos] != tag:
        raise SM2Error("malformed DER")
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        size = length & 0x7F
        length, pos = int.from_bytes(data[pos : pos + size], "big"), pos + size
    if pos + length > len(data):
        raise SM2Error("malformed DER")
    return data[pos : pos + length], pos + length


def from_der(der: bytes) -> bytes:
    """OpenSSL's DER SM2 ciphertext → ``C1 || C3 || C2``."""
    body, _ = _read_tlv(der, 0, 0x30)
    x, pos = _read_tlv(body, 0, 0x02)
    y, pos = _read_tlv(body, pos, 0x02)
    c3, pos = _read_tlv(body, pos, 0x04)
    c2, _ = _read_tlv(body, pos, 0x04)
    xi, yi = int.from_bytes(x, "big"), int.from_bytes(y, "big")
    return b"\x04" + xi.to_bytes(32, "big") + yi.to_bytes(32, "big") + c3 + c2


_SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


def public_to_pem(public: bytes) -> bytes:
    """SubjectPublicKeyInfo (id-ecPublicKey, curve SM2) in PEM, for OpenSSL and other implementations."""
    import base64

    der = _SM2_SPKI_PREFIX + public
    lines = [base64.b64encode(der)[i : i + 64] for i in range(0, 120, 64)]
    return (
        b"-----BEGIN PUBLIC KEY-----\n" + b"\n".join(x for x in lines if x) + b"\n-----END PUBLIC KEY-----\n"
    )
