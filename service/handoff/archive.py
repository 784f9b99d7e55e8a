"""The dossier's ZIP: its members, a manifest of their hashes, and the manifest's signature; and the check
a receiver runs on it. Pure functions: no database, so ``tipline dossier verify`` works on any machine.

Layout (``tipline-dossier/1``)::

    dossier.pdf                 the dossier for reading
    files/attachment-<id>.<ext> the clue's files as stored after cleaning (metadata removed)
    manifest.json               {"format": "tipline-dossier/1", "registry_number", "clue_id", "created_at",
                                 "exported_by", "hand_off": {...}, "hash_algorithm": "sha256" | "sm3",
                                 "identity_included": false,
                                 "files": [{"path", "size", "hash": "<hex>"}, ...]}
    manifest.sig.json           {"format": "tipline-dossier-signature/1", "algorithm": "ed25519" | "sm2-sm3",
                                 "key_id", "public_key": "<base64>",
                                 "signature": "<base64 over the exact bytes of manifest.json>"}

The dossier's hash is the manifest's hash (SHA-256, or SM3 under the national suite): the manifest names
every other member's hash, so it identifies the whole dossier, whoever re-packs the ZIP. Members are stored
uncompressed (the PDF and the files are compressed already) so a changed byte is a changed member.

Invariant: verification trusts only a key it was given (the registry's public signing key, handed to the
receiver apart from the dossier); the key inside the dossier merely says which key signed it.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import hashes

from service.audit.checkpoints import KEY_FORMAT, SigningKey, verify_signature

FORMAT = "tipline-dossier/1"
SIGNATURE_FORMAT = "tipline-dossier-signature/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"
PDF_NAME = "dossier.pdf"
FILES_DIR = "files/"
HASH_NAMES = {"sha256": "SHA-256", "sm3": "SM3"}
_CHUNK = 256 * 1024
# A fixed time stamp on every member: the ZIP's bytes depend on the content only.
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


class DossierInvalid(ValueError):
    """The dossier fails verification; the message says in one line what is wrong."""


def hash_algorithm_for(suite: str) -> str:
    return "sm3" if suite == "national" else "sha256"


def new_hash(algorithm: str) -> hashes.Hash:
    if algorithm == "sm3":
        return hashes.Hash(hashes.SM3())
    if algorithm == "sha256":
        return hashes.Hash(hashes.SHA256())
    raise DossierInvalid(f"unknown hash algorithm {algorithm!r} in the manifest")


def digest_of(data: bytes, algorithm: str) -> str:
    hasher = new_hash(algorithm)
    hasher.update(data)
    return hasher.finalize().hex()


@dataclass(frozen=True)
class BuiltDossier:
    data: bytes  # the ZIP
    digest: str  # hex hash of manifest.json
    hash_algorithm: str
    file_count: int  # members other than the manifest and its signature


def build_zip(
    *, members: Iterable[tuple[str, bytes]], manifest_fields: Mapping[str, Any], key: SigningKey, suite: str
) -> BuiltDossier:
    """Pack the members, a manifest of their hashes and its signature into one ZIP."""
    algorithm = hash_algorithm_for(suite)
    buffer = io.BytesIO()
    listed = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path, data in members:
            listed.append({"path": path, "size": len(data), "hash": digest_of(data, algorithm)})
            _write(archive, path, data)
        manifest = {
            **manifest_fields,
            "format": FORMAT,
            "hash_algorithm": algorithm,
            "files": listed,
        }
        manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
        signature = {
            "format": SIGNATURE_FORMAT,
            "algorithm": key.algorithm,
            "key_id": key.key_id,
            "public_key": base64.b64encode(key.public).decode(),
            "signature": base64.b64encode(key.sign(manifest_bytes)).decode(),
        }
        _write(archive, MANIFEST, manifest_bytes)
        _write(archive, SIGNATURE, (json.dumps(signature, indent=2) + "\n").encode())
    return BuiltDossier(buffer.getvalue(), digest_of(manifest_bytes, algorithm), algorithm, len(listed))


def _write(archive: zipfile.ZipFile, path: str, data: bytes) -> None:
    info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


# --- Verification -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    algorithm: str
    public: bytes


def read_trusted_key(path: Path) -> TrustedKey:
    """A registry's public signing key file (``audit-signing*.public.json``, ``tipline-signing-key/1``)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != KEY_FORMAT:
            raise ValueError
        return TrustedKey(
            str(document["key_id"]),
            str(document["algorithm"]),
            base64.b64decode(document["public"], validate=True),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DossierInvalid(f"{path} is not a readable {KEY_FORMAT} public key file") from None


@dataclass(frozen=True)
class VerifiedDossier:
    registry_number: str
    digest: str
    hash_algorithm: str
    key_id: str
    algorithm: str
    files: tuple[str, ...]
    identity_included: bool

    def describe(self) -> str:
        return (
            f"dossier intact: {self.registry_number}, {len(self.files)} file(s), signed by {self.key_id} "
            f"({self.algorithm}); dossier hash {self.hash_algorithm}:{self.digest}"
            + ("; includes reporter identity released by custodians" if self.identity_included else "")
        )


def verify_zip(source: Path | IO[bytes], trusted: Iterable[TrustedKey]) -> VerifiedDossier:
    """Check a dossier against the trusted keys; raises :class:`DossierInvalid` naming the first problem."""
    trusted_keys = {key.key_id: key for key in trusted}
    if not trusted_keys:
        raise DossierInvalid("no trusted key: give the registry's public signing key (--trusted-key)")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DossierInvalid("not a dossier: not a readable ZIP archive") from None
    with archive:
        names = archive.namelist()
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise DossierInvalid(f"{duplicates[0]} appears more than once in the archive")
        for required in (MANIFEST, SIGNATURE):
            if required not in names:
                raise DossierInvalid(f"not a dossier: {required} is missing")
        manifest_bytes = _read(archive, MANIFEST)
        signature = _signature(_read(archive, SIGNATURE))
        key = trusted_keys.get(signature["key_id"])
        if key is None or (key.algorithm, key.public) != (signature["algorithm"], signature["public_key"]):
            raise DossierInvalid(f"signed by key {signature['key_id']}, which is not a trusted key")
        if not verify_signature(key.algorithm, key.public, manifest_bytes, signature["signature"]):
            raise DossierInvalid(f"{MANIFEST} was changed: its signature does not verify")
        manifest = _manifest(manifest_bytes)
        algorithm = manifest["hash_algorithm"]
        listed = {entry["path"]: entry for entry in manifest["files"]}
        present = [name for name in names if name not in (MANIFEST, SIGNATURE) and not name.endswith("/")]
        for name in present:
            if name not in listed:
                raise DossierInvalid(f"{name} is not in the manifest (added after signing)")
        for path, entry in listed.items():
            if path not in names:
                raise DossierInvalid(f"{path} listed in the manifest is missing")
            size, digest = _hash_member(archive, path, algorithm)
            if size != entry["size"] or digest != entry["hash"]:
                raise DossierInvalid(
                    f"{path} was changed: its {HASH_NAMES[algorithm]} hash does not match the manifest"
                )
    return VerifiedDossier(
        registry_number=str(manifest.get("registry_number", "")),
        digest=digest_of(manifest_bytes, algorithm),
        hash_algorithm=algorithm,
        key_id=key.key_id,
        algorithm=key.algorithm,
        files=tuple(listed),
        identity_included=bool(manifest.get("identity_included")),
    )


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        raise DossierInvalid(f"{name} was changed: it is damaged in the archive") from None


def _signature(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
        if document.get("format") != SIGNATURE_FORMAT:
            raise ValueError
        return {
            "algorithm": str(document["algorithm"]),
            "key_id": str(document["key_id"]),
            "public_key": base64.b64decode(document["public_key"], validate=True),
            "signature": base64.b64decode(document["signature"], validate=True),
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DossierInvalid(f"{SIGNATURE} is malformed") from None


def _manifest(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
        ok = (
            manifest.get("format") == FORMAT
            and manifest.get("hash_algorithm") in HASH_NAMES
            and all(
                isinstance(e.get("path"), str)
                and isinstance(e.get("size"), int)
                and isinstance(e.get("hash"), str)
                for e in manifest["files"]
            )
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise DossierInvalid(f"{MANIFEST} is signed but not a {FORMAT} manifest")
    return manifest


def _hash_member(archive: zipfile.ZipFile, name: str, algorithm: str) -> tuple[int, str]:
    hasher = new_hash(algorithm)
    size = 0
    try:
        with archive.open(name) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                hasher.update(chunk)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        raise DossierInvalid(f"{name} was changed: it is damaged in the archive") from None
    return size, hasher.finalize().hex()
