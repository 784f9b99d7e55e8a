"""Receipt codes (查询码): how they look, how they are checked. Pure functions, no database.

A code is 25 decimal digits from ``secrets`` (83 bits), shown in five groups of five. Digits have no
look-alikes, read aloud well in Chinese over the phone, and type easily on any phone keypad. Only
HMAC-SHA256(server secret, digits) is stored; the code itself is never logged and never put in a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

DIGITS = 25
GROUP = 5
_SEPARATORS = re.compile(r"[\s\-－—_.·,，]+")
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


class MalformedReceipt(ValueError):
    """Not shaped like a receipt code (wrong length or characters)."""


def new_receipt_code() -> str:
    # One uniform draw over all 25-digit strings (leading zeros included).
    return str(secrets.randbelow(10**DIGITS)).zfill(DIGITS)


def format_receipt(code: str) -> str:
    return " ".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalise_receipt(text: str) -> str:
    """Accept what people type: spaces, dashes, full-width digits."""
    digits = _SEPARATORS.sub("", text.translate(_FULLWIDTH_DIGITS))
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        raise MalformedReceipt("a receipt code has 25 digits")
    return digits


def receipt_hash(secret: bytes, code: str) -> bytes:
    return hmac.new(secret, code.encode("ascii"), hashlib.sha256).digest()


def hashes_match(stored: bytes, candidate: bytes) -> bool:
    return hmac.compare_digest(stored, candidate)
