"""The key ceremony: production keys made on a custodial machine; the identity private key is never whole
on disk.

``init_keys`` writes, for the suite chosen:

- ``<keys_dir>/case[.national].private.json`` and ``.public.json``: the case key pair (staff servers load the
  private half; intake servers only the public one);
- ``<keys_dir>/identity[.national].public.json``: the identity public key; its private half exists only in
  memory during the ceremony, split k-of-n by Shamir, one share per custodian in
  ``<custody_dir>/identity-<key id>.<holder>.share.json``, encrypted to that custodian's passphrase;
- ``<keys_dir>/contact[.national].public.json``: the contact key; each custodian gets a whole copy of its
  private half, ``<custody_dir>/contact-<key id>.<holder>.key.json``, encrypted to their passphrase;
- ``<keys_dir>/escrow[.national].public.json``: the compartments' escrow key (every clue's content key and
  every unit key is also sealed to it); its private half split k-of-n like the identity key,
  ``<custody_dir>/escrow-<key id>.<holder>.share.json`` (``custody.service.recover_unit``).

``rotate_keys`` does the same with fresh keys and keeps the old case private key as
``case-<old key id>.private.json`` (staff servers load every ``case*.private.json``), so old envelopes open.
Old identity shares and contact copies stay with their holders, named by key id.

Wiping: the private halves pass through ``bytearray`` buffers that are overwritten when done. Python cannot
promise more: immutable ``bytes`` made on the way (by ``cryptography``, by slicing) stay in the heap until
the allocator reuses them, and the process may have been swapped. The ceremony machine should be offline,
without swap, and powered off afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.custody import shamir
from service.custody.shares import CustodyFile, check_passphrase, write_custody_file
from service.platform.crypto.keys import (
    AnyKeyPair,
    KeyFileError,
    generate_key_pair,
    private_bytes,
    public_key_document,
    read_public_key,
    write_key_pair,
    write_public_key,
)


@dataclass(frozen=True)
class Custodian:
    name: str
    passphrase: str


@dataclass(frozen=True)
class CeremonyResult:
    case_key_id: str
    identity_key_id: str
    contact_key_id: str
    files: list[Path]
    retired_case_key: Path | None = None
    escrow_key_id: str | None = None


def _tag(suite: str) -> str:
    return ".national" if suite == "national" else ""


def wipe(buffer: bytearray) -> None:
    """Overwrite a buffer in place (best effort: see the module docstring)."""
    for i in range(len(buffer)):
        buffer[i] = 0


def _check(custodians: list[Custodian], threshold: int) -> None:
    names = [c.name for c in custodians]
    if len(set(names)) != len(names):
        raise KeyFileError("each custodian may appear once")
    if not 2 <= threshold <= len(custodians):
        raise KeyFileError("the threshold must be at least 2 and at most the number of custodians")
    for custodian in custodians:
        check_passphrase(custodian.passphrase)


def _make(
    *, keys_dir: Path, custody_dir: Path, suite: str, custodians: list[Custodian], threshold: int
) -> CeremonyResult:
    tag = _tag(suite)
    case: AnyKeyPair = generate_key_pair("case", suite)
    identity = generate_key_pair("identity", suite)
    contact = generate_key_pair("contact", suite)
    escrow = generate_key_pair("escrow", suite)
    files: list[Path] = []
    for pair in (identity, escrow):
        files += _split(pair, custody_dir=custody_dir, custodians=custodians, threshold=threshold)
    contact_secret = bytearray(private_bytes(contact))
    try:
        for custodian in custodians:
            path = custody_dir / f"contact-{contact.public.key_id}.{custodian.name}.key.json"
            item = CustodyFile(
                kind="contact-key",
                holder=custodian.name,
                purpose="contact",
                suite=contact.public.suite,
                key_id=contact.public.key_id,
                threshold=1,
                shares=len(custodians),
                x=0,
                secret=bytes(contact_secret),
            )
            write_custody_file(path, item, custodian.passphrase)
            files.append(path)
    finally:
        wipe(contact_secret)
    write_key_pair(keys_dir / f"case{tag}.private.json", case)
    write_public_key(keys_dir / f"case{tag}.public.json", case.public)
    write_public_key(keys_dir / f"identity{tag}.public.json", identity.public)
    write_public_key(keys_dir / f"contact{tag}.public.json", contact.public)
    write_public_key(keys_dir / f"escrow{tag}.public.json", escrow.public)
    files += [
        keys_dir / f"{name}{tag}.{kind}.json"
        for name, kind in (
            ("case", "private"),
            ("case", "public"),
            ("identity", "public"),
            ("contact", "public"),
            ("escrow", "public"),
        )
    ]
    return CeremonyResult(
        case.public.key_id,
        identity.public.key_id,
        contact.public.key_id,
        files,
        escrow_key_id=escrow.public.key_id,
    )


def _split(pair: AnyKeyPair, *, custody_dir: Path, custodians: list[Custodian], threshold: int) -> list[Path]:
    """The private half split k-of-n, one share per custodian, each sealed to their passphrase."""
    purpose = pair.public.purpose
    files: list[Path] = []
    secret = bytearray(private_bytes(pair))
    try:
        pieces = shamir.split(bytes(secret), threshold=threshold, shares=len(custodians))
        for custodian, piece in zip(custodians, pieces, strict=True):
            path = custody_dir / f"{purpose}-{pair.public.key_id}.{custodian.name}.share.json"
            item = CustodyFile(
                kind=f"{purpose}-share",
                holder=custodian.name,
                purpose=purpose,
                suite=pair.public.suite,
                key_id=pair.public.key_id,
                threshold=threshold,
                shares=len(custodians),
                x=piece.x,
                secret=piece.y,
            )
            write_custody_file(path, item, custodian.passphrase)
            files.append(path)
    finally:
        wipe(secret)
    return files


def init_keys(
    *, keys_dir: Path, custody_dir: Path, suite: str, custodians: list[Custodian], threshold: int
) -> CeremonyResult:
    _check(custodians, threshold)
    tag = _tag(suite)
    existing = [keys_dir / f"{n}{tag}.public.json" for n in ("case", "identity", "contact")]
    if any(p.exists() for p in existing):
        raise KeyFileError(f"keys already exist in {keys_dir}: use `tipline keys rotate`")
    return _make(
        keys_dir=keys_dir, custody_dir=custody_dir, suite=suite, custodians=custodians, threshold=threshold
    )


def rotate_keys(
    *, keys_dir: Path, custody_dir: Path, suite: str, custodians: list[Custodian], threshold: int
) -> CeremonyResult:
    _check(custodians, threshold)
    tag = _tag(suite)
    current = keys_dir / f"case{tag}.private.json"
    retired = None
    if current.exists():
        old_id = read_public_key(keys_dir / f"case{tag}.public.json").key_id
        retired = keys_dir / f"case-{old_id}{tag}.private.json"
        current.replace(retired)
    result = _make(
        keys_dir=keys_dir, custody_dir=custody_dir, suite=suite, custodians=custodians, threshold=threshold
    )
    return CeremonyResult(
        result.case_key_id,
        result.identity_key_id,
        result.contact_key_id,
        result.files,
        retired,
        result.escrow_key_id,
    )


def export_public(*, keys_dir: Path, suite: str) -> dict[str, object]:
    """The current public key documents, for intake servers and for anyone verifying key ids."""

    tag = _tag(suite)
    return {
        name: public_key_document(read_public_key(keys_dir / f"{name}{tag}.public.json"))
        for name in ("case", "identity", "contact", "escrow")
        if (keys_dir / f"{name}{tag}.public.json").exists()
    }
