"""Staff web-login secrets: Argon2id password hashes and TOTP (RFC 6238). Pure functions, no database.

Invariants:
- A password is only ever held in memory long enough to hash or verify it; it is never logged, audited or
  put in an exception message.
- The TOTP shared secret is stored encrypted (AES-256-GCM under a key derived from the server's lookup
  secret, bound to the staff id), so a copy of the database alone does not yield working second factors.
- A TOTP code is accepted at most once: callers keep the last accepted time step and pass it back in.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.platform.errors import Invalid

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256  # bounds the hashing work an attacker can ask for
TOTP_ISSUER = "Tipline"
TOTP_INTERVAL = 30
TOTP_DIGITS = 6

# argon2-cffi's defaults are RFC 9106's low-memory profile of Argon2id (t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise Invalid(
            f"密码至少需要 {MIN_PASSWORD_CHARS} 个字符",
            message_en=f"a password needs at least {MIN_PASSWORD_CHARS} characters",
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise Invalid("密码太长", message_en=f"a password has at most {MAX_PASSWORD_CHARS} characters")
    if password.strip() != password or len(set(password)) < 4:
        raise Invalid("密码过于简单", message_en="the password is too simple")


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if ``password`` matches. With no stored hash it still does the same work (against a dummy
    hash), so a missing account or password cannot be told apart by timing."""
    candidate = password[:MAX_PASSWORD_CHARS]
    dummy = _dummy_hash()  # made on the first call of either kind, so that cost does not tell them apart
    try:
        return _hasher.verify(stored_hash or dummy, candidate) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(24))


# --- TOTP ---------------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32(length=32)  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, account_name: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL).provisioning_uri(
        name=account_name, issuer_name=TOTP_ISSUER
    )


def verify_totp(secret: str, code: str, *, last_step: int | None, at: float) -> int | None:
    """The time step of a valid, not yet used code (one step of clock drift either way), else None."""
    code = "".join(ch for ch in code if not ch.isspace())
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
    now_step = int(at // TOTP_INTERVAL)
    for step in (now_step, now_step - 1, now_step + 1):
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def seal_totp_secret(key: bytes, staff_id: str, secret: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode("ascii"), _totp_aad(staff_id))


def open_totp_secret(key: bytes, staff_id: str, sealed: bytes) -> str | None:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], _totp_aad(staff_id)).decode("ascii")
    except (InvalidTag, ValueError):
        return None


def _totp_aad(staff_id: str) -> bytes:
    return f"staff_credentials/{staff_id}/totp_secret".encode()
