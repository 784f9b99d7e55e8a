"""Pure hash-chain logic: canonical encoding, entry hashes and verification. No database here.

Each entry's hash covers a canonical JSON encoding of its fields and the previous entry's hash, under the
hash suite the entry names, so the chain can move to another suite (SM3) without rewriting history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes

GENESIS = "0" * 64
DEFAULT_SUITE = "sha256"


def _sm3_hex(data: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


HASH_SUITES: dict[str, Callable[[bytes], str]] = {
    "sha256": lambda data: hashlib.sha256(data).hexdigest(),
    "sm3": _sm3_hex,  # national suite (GB/T 32905); 64 hex digits like SHA-256
}


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class LinkFields:
    chain: int
    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str  # canonical JSON text
    suite: str
    prev_hash: str


def entry_hash(fields: LinkFields) -> str:
    hasher = HASH_SUITES.get(fields.suite)
    if hasher is None:
        raise ValueError(f"unknown audit hash suite {fields.suite!r}")
    encoded = canonical_json(
        [
            "tipline-audit/1",
            fields.suite,
            fields.chain,
            fields.seq,
            fields.at,
            fields.actor,
            fields.action,
            fields.object_type,
            fields.object_id,
            fields.details,
            fields.prev_hash,
        ]
    )
    return hasher(encoded.encode("utf-8"))


@dataclass(frozen=True)
class StoredLink:
    row_id: int
    fields: LinkFields
    stored_hash: str


@dataclass(frozen=True)
class ChainProblem:
    chain: int
    row_id: int | None
    seq: int | None
    reason: str

    def describe(self) -> str:
        where = f"chain {self.chain}" + (f", entry id {self.row_id} (seq {self.seq})" if self.row_id else "")
        return f"{where}: {self.reason}"


def verify_chain(
    chain: int, links: Iterable[StoredLink], head: tuple[int, str] | None
) -> ChainProblem | None:
    """Walk one chain in seq order; return the first problem, or None when it is intact up to its head."""
    expected_seq, prev = 1, GENESIS
    last: StoredLink | None = None
    for link in links:
        f = link.fields
        if f.seq != expected_seq:
            reason = f"sequence jumps from {expected_seq - 1} to {f.seq} (entries deleted or reordered)"
            return ChainProblem(chain, link.row_id, f.seq, reason)
        if f.prev_hash != prev:
            return ChainProblem(chain, link.row_id, f.seq, "previous-hash link broken (reordered or altered)")
        try:
            computed = entry_hash(f)
        except ValueError as exc:
            return ChainProblem(chain, link.row_id, f.seq, str(exc))
        if computed != link.stored_hash:
            return ChainProblem(chain, link.row_id, f.seq, "content does not match its hash (altered)")
        prev, expected_seq, last = link.stored_hash, expected_seq + 1, link
    if head is not None:
        head_seq, head_hash = head
        last_seq = last.fields.seq if last else 0
        if head_seq != last_seq or (last is not None and head_hash != last.stored_hash):
            reason = f"chain ends at seq {last_seq} but its head records seq {head_seq} (entries removed)"
            return ChainProblem(chain, last.row_id if last else None, last_seq or None, reason)
    return None
