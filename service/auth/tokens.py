"""Bearer tokens: 256 random bits, shown once, stored as SHA-256 (no salt needed at that entropy)."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "tlk_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
