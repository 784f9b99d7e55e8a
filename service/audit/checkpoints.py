"""Signed checkpoints of the audit chains, and content-free alerts about unusual reading.

Why: the hash chain shows an entry was altered or removed, but someone who can write the database can also
rewrite the whole chain from the first entry, recomputing every hash, and it verifies again. A checkpoint
signs every chain's head (seq and hash) at a moment; once a copy is held elsewhere (printed, mailed to the
supervising body, on another machine), ``verify_against`` shows any rewrite of what it covers: the stored
entry at each checkpointed (chain, seq) must still carry the checkpointed hash.

Checkpoint file (JSON, ``tipline-checkpoint/1``)::

    {"format": "tipline-checkpoint/1", "created_at": "<ISO 8601 UTC>", "algorithm": "ed25519" | "sm2-sm3",
     "key_id": "audit-<16 hex>", "public_key": "<base64>", "heads": {"<chain>": [<seq>, "<hash>"], ...},
     "signature": "<base64 over the canonical JSON of every other field>"}

The signing key (``<keys dir>/audit-signing[.national].private.json``; Ed25519, or SM2 under the national
suite) is made on first use. Verification trusts only the public keys in ``audit-signing*.public.json`` of
the keys directory (copy them off the server too): a checkpoint signed by any other key is refused, and
with no trusted key configured nothing is accepted (the key embedded in a file proves only that the file
is whole, not who made it).

Checkpoints are taken automatically (``audit.checkpoint``, every ``TIPLINE_AUDIT_CHECKPOINT_MINUTES``) and
written as files, one per checkpoint, created exclusively and read-only, to
``TIPLINE_AUDIT_CHECKPOINT_DIR``: a directory on the application server that the database (and its role)
cannot write. Someone who deletes audit entries in the database can then hide at most the entries of the
last interval: ``tipline audit verify`` compares with the newest file and names what is gone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.audit import service as audit_service
from service.audit.chain import canonical_json
from service.audit.models import AuditEntry, AuditHead
from service.platform.crypto import sm2
from service.platform.db import Base, UTCDateTime
from service.platform.timeutil import utcnow

FORMAT = "tipline-checkpoint/1"
KEY_FORMAT = "tipline-signing-key/1"


class AuditCheckpoint(Base):
    """A signed checkpoint as made; the exported file is the copy that matters."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    algorithm: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(64))
    heads: Mapped[str] = mapped_column(Text)  # canonical JSON
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointError(ValueError):
    """A checkpoint file is malformed, not signed by the trusted key, or the chains no longer match it."""


@dataclass(frozen=True)
class SigningKey:
    algorithm: str  # "ed25519" | "sm2-sm3"
    key_id: str
    public: bytes
    private: bytes

    def sign(self, message: bytes) -> bytes:
        if self.algorithm == "ed25519":
            return ed25519.Ed25519PrivateKey.from_private_bytes(self.private).sign(message)
        return sm2.sign(self.private, message)


def verify_signature(algorithm: str, public: bytes, message: bytes, signature: bytes) -> bool:
    if algorithm == "ed25519":
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False
    if algorithm == "sm2-sm3":
        return sm2.verify(public, message, signature)
    return False


def _key_id(algorithm: str, public: bytes) -> str:
    if algorithm == "sm2-sm3":
        digest = hashes.Hash(hashes.SM3())
        digest.update(public)
        return f"audit-{digest.finalize().hex()[:16]}"
    return f"audit-{hashlib.sha256(public).hexdigest()[:16]}"


def signing_key_paths(keys_dir: Path, suite: str) -> tuple[Path, Path]:
    tag = ".national" if suite == "national" else ""
    return keys_dir / f"audit-signing{tag}.private.json", keys_dir / f"audit-signing{tag}.public.json"


def _write(path: Path, document: dict[str, Any], mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2)
        fh.write("\n")


def load_or_create_signing_key(keys_dir: Path, suite: str) -> SigningKey:
    private_path, public_path = signing_key_paths(keys_dir, suite)
    if private_path.exists():
        document = json.loads(private_path.read_text(encoding="utf-8"))
        if document.get("format") != KEY_FORMAT:
            raise CheckpointError(f"{private_path}: not a {KEY_FORMAT} file")
        return SigningKey(
            document["algorithm"],
            document["key_id"],
            base64.b64decode(document["public"]),
            base64.b64decode(document["private"]),
        )
    if suite == "national":
        algorithm, private = "sm2-sm3", sm2.generate_private()
        public = sm2.public_from_private(private)
    else:
        algorithm = "ed25519"
        key = ed25519.Ed25519PrivateKey.generate()
        private, public = key.private_bytes_raw(), key.public_key().public_bytes_raw()
    signing = SigningKey(algorithm, _key_id(algorithm, public), public, private)
    document = {
        "format": KEY_FORMAT,
        "algorithm": algorithm,
        "key_id": signing.key_id,
        "public": base64.b64encode(public).decode(),
    }
    _write(public_path, document, 0o644)
    _write(private_path, {**document, "private": base64.b64encode(private).decode()}, 0o600)
    return signing


def trusted_public_key(keys_dir: Path) -> dict[str, tuple[str, bytes]]:
    """Every audit signing public key on this machine, by key id: (algorithm, key)."""
    out = {}
    for path in keys_dir.glob("audit-signing*.public.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        out[document["key_id"]] = (document["algorithm"], base64.b64decode(document["public"]))
    return out


def write_checkpoint_file(directory: Path, document: dict[str, Any]) -> Path:
    """One new file per checkpoint, never overwritten: created exclusively, read-only (0400), in a 0700
    directory. Named by its time, so the newest sorts last."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = str(document["created_at"]).replace("-", "").replace(":", "").replace(".", "")
    path = directory / f"checkpoint-{stamp}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def newest_checkpoint_file(directory: Path) -> Path | None:
    files = sorted(directory.glob("checkpoint-*.json")) if directory.is_dir() else []
    return files[-1] if files else None


def checkpoint_time(path: Path) -> datetime | None:
    try:
        created = json.loads(path.read_text(encoding="utf-8"))["created_at"]
        return datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def take_checkpoint_if_due(
    session: AsyncSession, *, key: SigningKey, directory: Path, every: timedelta, now: datetime
) -> Path | None:
    """Sign the chain heads and write the file when the newest file is at least ``every`` old (a little
    slack, so a job that runs a few seconds early in its slot still takes it)."""
    newest = newest_checkpoint_file(directory)
    last = checkpoint_time(newest) if newest is not None else None
    if last is not None and now - last < every - timedelta(seconds=30):
        return None
    document = await create_checkpoint(session, key=key)
    return write_checkpoint_file(directory, document)


def _signed_part(document: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in document.items() if k != "signature"}).encode("utf-8")


async def create_checkpoint(
    session: AsyncSession, *, key: SigningKey, actor: str = "system"
) -> dict[str, Any]:
    """Sign the current head of every chain; store the checkpoint and return the document to export."""
    heads = {
        str(h.chain): [h.seq, h.entry_hash]
        for h in (await session.execute(select(AuditHead).order_by(AuditHead.chain))).scalars()
    }
    now = utcnow()
    document: dict[str, Any] = {
        "format": FORMAT,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "algorithm": key.algorithm,
        "key_id": key.key_id,
        "public_key": base64.b64encode(key.public).decode(),
        "heads": heads,
    }
    signature = key.sign(_signed_part(document))
    document["signature"] = base64.b64encode(signature).decode()
    session.add(
        AuditCheckpoint(
            created_at=now,
            algorithm=key.algorithm,
            key_id=key.key_id,
            heads=canonical_json(heads),
            signature=signature,
        )
    )
    await session.flush()
    await audit_service.record(
        session,
        actor=actor,
        action="audit.checkpoint",
        object_type="audit",
        object_id=key.key_id,
        details={"chains": len(heads), "entries": sum(seq for seq, _ in heads.values())},
    )
    return document


async def verify_against(
    session: AsyncSession, document: dict[str, Any], *, trusted: dict[str, tuple[str, bytes]] | None = None
) -> list[str]:
    """Problems found comparing the database with a checkpoint (an empty list: it matches)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return ["not a tipline checkpoint file"]
    try:
        algorithm, key_id = str(document["algorithm"]), str(document["key_id"])
        public = base64.b64decode(document["public_key"], validate=True)
        signature = base64.b64decode(document["signature"], validate=True)
        heads = {int(c): (int(v[0]), str(v[1])) for c, v in document["heads"].items()}
    except (KeyError, ValueError, TypeError, IndexError):
        return ["checkpoint file is malformed"]
    if not trusted:
        return ["no trusted audit signing key is configured: the checkpoint's own key proves nothing"]
    if key_id not in trusted or trusted[key_id] != (algorithm, public):
        return [f"checkpoint signed by {key_id}, which is not a trusted audit signing key"]
    problems: list[str] = []
    if not verify_signature(algorithm, public, _signed_part(document), signature):
        return [*problems, "checkpoint signature does not verify (file altered)"]
    report = await audit_service.verify(session)
    if report.problem:
        problems.append(f"audit trail broken at {report.problem.describe()}")
    for chain, (seq, expected) in sorted(heads.items()):
        if seq == 0:
            continue
        stored = await session.scalar(
            select(AuditEntry.entry_hash).where(AuditEntry.chain == chain, AuditEntry.seq == seq)
        )
        if stored is None:
            problems.append(f"chain {chain}: entry seq {seq} of the checkpoint is gone (history removed)")
        elif stored != expected:
            problems.append(f"chain {chain}: entry seq {seq} differs from the checkpoint (history rewritten)")
    return problems


# --- Alerts: one account reading or exporting unusually many clues -------------------------------------

# Every audited action by which staff read what a clue holds. Per object: the entry's object is the clue
# (or the quarantined mail) that was read. In bulk: one entry stands for many clues, and its details count
# them (``rows`` or ``results``), so each clue exported or listed counts once, not the export as one.
# ``tests/integration/test_audit_reading_alerts.py`` checks that every read action the code audits is here.
READ_ACTIONS = (
    "clue.read",
    "clue.additions_read",
    "clue.classification_read",
    "clue.consultations_read",
    "clue.history_read",
    "clue.progress_read",
    "clue.dossier_exported",  # the hand-off dossier: the clue's masked texts and files, one clue
    "clue.dossier_feedback_read",
    "clue.dossier_downloaded",  # a kept dossier, as produced with a transfer
    "clue.follow_ups_read",
    "clue.objections_read",
    "clue.redactions_read",
    "clue.unmask_requests_read",
    "message.read",
    "attachment.downloaded",
    "attachment.redacted_downloaded",
    "mail.quarantine_read",
)
BULK_READ_ACTIONS = {
    "clue.search": "results",
    "ledger.exported": "rows",
    "brief.exported": "rows",
    "classification.corrections_exported": "rows",
    "transfer_requests.read": "transfer_request_ids",  # the pending requests' reasons, one per request
    "custody_requests.read": "custody_request_ids",  # custody requests' reasons opened, one per request
}


@dataclass(frozen=True)
class UnusualReading:
    actor: str
    entries: int
    distinct_clues: int


async def unusual_reading(
    session: AsyncSession, *, since: datetime, threshold: int, actions: tuple[str, ...] = READ_ACTIONS
) -> list[UnusualReading]:
    """Accounts whose reads and exports since ``since`` touch more than ``threshold`` clues: the distinct
    objects read one by one plus every row of each search and export."""
    stamp = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    recent = (AuditEntry.at >= stamp, AuditEntry.actor.like("staff:%"))
    counts: dict[str, list[int]] = {}
    rows = await session.execute(
        select(AuditEntry.actor, func.count(), func.count(AuditEntry.object_id.distinct()))
        .where(AuditEntry.action.in_(actions), *recent)
        .group_by(AuditEntry.actor)
    )
    for actor, entries, distinct in rows:
        counts[actor] = [entries, distinct]
    bulk = await session.execute(
        select(AuditEntry.actor, AuditEntry.action, AuditEntry.details).where(
            AuditEntry.action.in_(list(BULK_READ_ACTIONS)), *recent
        )
    )
    for actor, action, details in bulk:
        item = counts.setdefault(actor, [0, 0])
        item[0] += 1
        item[1] += _bulk_count(details, BULK_READ_ACTIONS[action])
    return [
        UnusualReading(actor, entries, distinct)
        for actor, (entries, distinct) in sorted(counts.items())
        if distinct > threshold
    ]


def _bulk_count(details: str, field: str) -> int:
    """How many clues one search or export entry stands for; one if its details do not say (never zero:
    an entry that cannot be read must not hide reading)."""
    try:
        value = json.loads(details).get(field)
    except (ValueError, AttributeError):
        return 1
    if isinstance(value, list):
        value = len(value)
    return value if isinstance(value, int) and value > 0 else 1


async def raise_reading_alerts(
    session: AsyncSession, *, now: datetime, period: timedelta, threshold: int, notify: Any = None
) -> list[UnusualReading]:
    """Record one content-free audit entry per unusual account (who and how many, never which clues) and
    hand the same to ``notify`` (e.g. the supervisors' notification outbox)."""
    found = await unusual_reading(session, since=now - period, threshold=threshold)
    for item in found:
        await audit_service.record(
            session,
            actor="system",
            action="alert.unusual_reading",
            object_type="staff",
            object_id=item.actor.removeprefix("staff:"),
            details={
                "entries": item.entries,
                "distinct_clues": item.distinct_clues,
                "period_seconds": int(period.total_seconds()),
                "threshold": threshold,
            },
        )
        if notify is not None:
            await notify(session, item)
    return found
