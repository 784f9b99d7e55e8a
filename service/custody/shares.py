"""Custodian files: a Shamir share of the identity private key, or a copy of the contact private key, each
encrypted to its holder's passphrase.

File format (JSON, UTF-8, mode 0600), ``tipline-custody/1``::

    {"format": "tipline-custody/1", "kind": "identity-share" | "contact-key",
     "holder": "<custodian's account name>", "purpose": "identity" | "contact",
     "suite": "<key suite>", "key_id": "<the public key this material belongs to>",
     "threshold": k, "shares": n, "x": <share x, 1..n; 0 for a contact key>,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
     "nonce": "<base64, 12 bytes>", "ct": "<base64: AES-256-GCM of the share or key bytes>"}

Everything except ``ct`` is authenticated as associated data (canonical JSON), so a file cannot be relabelled
(another holder, another x, another key) without failing to open. A wrong passphrase and a damaged file give
the same error.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = "tipline-custody/1"
SCRYPT_N = 2**15  # 32 MiB with r=8: seconds of work per guess on a GPU farm, 0.1 s for the holder
SCRYPT_R, SCRYPT_P = 8, 1
MIN_PASSPHRASE_CHARS = 12


class CustodyFileError(ValueError):
    """A custodian file is missing, malformed, or does not open with the passphrase given."""


@dataclass(frozen=True)
class CustodyFile:
    kind: str
    holder: str
    purpose: str
    suite: str
    key_id: str
    threshold: int
    shares: int
    x: int
    secret: bytes  # the share's y, or the contact private key; only in memory


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise CustodyFileError(f"a custodian passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")


def write_custody_file(path: Path, item: CustodyFile, passphrase: str) -> None:
    check_passphrase(passphrase)
    salt, nonce = os.urandom(16), os.urandom(12)
    header: dict[str, Any] = {
        "format": FORMAT,
        "kind": item.kind,
        "holder": item.holder,
        "purpose": item.purpose,
        "suite": item.suite,
        "key_id": item.key_id,
        "threshold": item.threshold,
        "shares": item.shares,
        "x": item.x,
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)},
        "nonce": _b64(nonce),
    }
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    document = dict(header, ct=_b64(AESGCM(key).encrypt(nonce, item.secret, _aad(header))))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_custody_file(path: Path, passphrase: str) -> CustodyFile:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CustodyFileError(f"custody file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise CustodyFileError(f"{path}: not a readable custody file") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CustodyFileError(f"{path}: not a {FORMAT} file")
    try:
        header = {k: v for k, v in document.items() if k != "ct"}
        kdf = header["kdf"]
        if kdf.get("name") != "scrypt" or not (2**14 <= int(kdf["n"]) <= 2**22):
            raise CustodyFileError(f"{path}: unsupported key derivation")
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(header["nonce"], validate=True)
        ct = base64.b64decode(document["ct"], validate=True)
        key = _derive(passphrase, salt, int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
        secret = AESGCM(key).decrypt(nonce, ct, _aad(header))
        return CustodyFile(
            kind=str(header["kind"]),
            holder=str(header["holder"]),
            purpose=str(header["purpose"]),
            suite=str(header["suite"]),
            key_id=str(header["key_id"]),
            threshold=int(header["threshold"]),
            shares=int(header["shares"]),
            x=int(header["x"]),
            secret=secret,
        )
    except InvalidTag:
        raise CustodyFileError(f"{path}: wrong passphrase, or the file was altered") from None
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CustodyFileError):
            raise
        raise CustodyFileError(f"{path}: malformed custody file") from None


def peek_holder(path: Path) -> str:
    """The holder named in a custody file (unauthenticated until the file is opened)."""
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["holder"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CustodyFileError(f"{path}: not a readable custody file") from exc
