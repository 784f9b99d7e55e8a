"""Staff corrections of a clue's classification, their export as labelled data, the taxonomy in force, and
near-duplicate links. Services flush; the caller's edge (route, CLI, worker) commits.

Invariants: a correction's reason is sealed to the clue's own key (the case key for a clue sealed before
compartments, ``compartments.items``) and never enters the audit log (labels do:
they are not personal data); exports carry the masked text only; links never merge or hide a clue.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.audit import service as audit_service
from service.auth.service import Principal
from service.classification import classifier, dedup
from service.classification.models import (
    ClassificationCorrection,
    ClueLink,
    NearDuplicateBand,
    NearDuplicatePending,
)
from service.compartments import items
from service.compartments import service as compartments
from service.platform.crypto.keys import EnvelopeError, KeyRing
from service.platform.db import execute_many, new_id
from service.platform.errors import Invalid
from service.platform.runtime import Runtime
from service.platform.timeutil import utcnow
from service.registry.lifecycle import lock_visible_clue
from service.registry.models import NO_CASE_COPY, Clue, ClueCategory, ClueState
from service.registry.service import get_visible_clue

log = logging.getLogger("tipline.classification")

NEAR_DUPLICATE = "near_duplicate"
NEAR_DUPLICATE_TASK = "classification.near_duplicates"
NEAR_DUPLICATE_THRESHOLD = 0.6  # stored links and the related-clues view alike
# The related-clues view compares with this many of the most recent clues that have a signature.
NEAR_DUPLICATE_WINDOW = 5000
CHUNK_PAUSE_SECONDS = 0.05
# After each chunk the task pauses this many times as long as the chunk took: at most 1/(1+factor) of a core.
BACKGROUND_PAUSE_FACTOR = 7
MAX_CANDIDATES = 200  # per job: clues sharing an LSH bucket with the new ones
EXPORT_BATCH = 500


def _binding(correction_id: str) -> str:
    return f"classification_corrections/{correction_id}/reason"


def _labels(raw: str) -> list[str]:
    return list(json.loads(raw))


def _in_taxonomy_order(labels: set[str]) -> list[str]:
    known = classifier.current_taxonomy().category_ids
    return [c for c in known if c in labels] + sorted(labels - set(known))


# --- Corrections -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrectionView:
    id: str
    old_labels: list[str]
    new_labels: list[str]
    taxonomy_version: str
    reason: str
    actor: str
    created_at: datetime


@dataclass(frozen=True)
class ClassificationView:
    clue_id: str
    labels: list[str]  # in force: the classifier's, or the latest correction's
    needs_triage: bool
    taxonomy_version: str
    corrected: bool
    machine: dict[str, Any]  # the sealed result at intake: labels, scores, evidence, taxonomy_version
    corrections: list[CorrectionView]


async def correct_classification(
    session: AsyncSession,
    *,
    clue_id: str,
    labels: list[str],
    reason: str,
    principal: Principal,
    keys: KeyRing,
) -> CorrectionView:
    """Replace a visible clue's categories with ``labels`` (validated against the taxonomy in force)."""
    reason = reason.strip()
    if not reason:
        raise Invalid("请填写更正理由", message_en="a reason is required")
    clue = await lock_visible_clue(session, clue_id=clue_id, principal=principal)
    if not labels:
        raise Invalid("请至少选择一个问题类别", message_en="give at least one category")
    try:
        new = classifier.validate_labels(labels)
    except classifier.InvalidLabelsError as exc:
        raise Invalid(
            "问题类别无效：类别须存在、不重复，“不属于受理范围”不能与其他类别同选",
            message_en=f"invalid labels: {exc}",
        ) from exc
    old = _in_taxonomy_order({c.category for c in clue.categories})
    version = classifier.current_taxonomy().version
    correction_id = new_id()
    now = utcnow()
    correction = ClassificationCorrection(
        id=correction_id,
        clue_id=clue.id,
        old_labels=json.dumps(old),
        new_labels=json.dumps(new),
        taxonomy_version=version,
        reason=await session.run_sync(
            lambda s: items.seal_item(
                s, keys, clue_id=clue.id, data=reason.encode("utf-8"), binding=_binding(correction_id)
            )
        ),
        actor=principal.actor,
        created_at=now,
    )
    session.add(correction)
    keep = set(new)
    for row in list(clue.categories):
        if row.category not in keep:
            clue.categories.remove(row)
    present = {row.category for row in clue.categories}
    clue.categories.extend(ClueCategory(category=c) for c in new if c not in present)
    clue.needs_triage = False
    clue.taxonomy_version = version
    await session.flush()
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.classification_corrected",
        object_type="clue",
        object_id=clue.id,
        details={
            "correction_id": correction_id,
            "old_labels": old,
            "new_labels": new,
            "taxonomy_version": version,
        },
    )
    return CorrectionView(correction_id, old, new, version, reason, principal.actor, now)


async def read_classification(
    session: AsyncSession, *, clue_id: str, principal: Principal, keys: KeyRing
) -> ClassificationView:
    """The classification in force with the classifier's evidence and every correction (reasons opened)."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    # A compartmented clue's evidence and correction reasons open with the requester's key, else 403.
    opened = await session.run_sync(
        lambda s: compartments.open_clue(s, clue_id=clue.id, unlocked=principal.unlocked)
    )
    machine = json.loads(
        opened["classification"]
        if opened is not None
        else keys.open(clue.classification, f"clues/{clue.id}/classification")
    )
    opener = await session.run_sync(
        lambda s: items.item_opener(s, keys, clue_id=clue.id, unlocked=principal.unlocked)
    )
    rows = (
        await session.scalars(
            select(ClassificationCorrection)
            .where(ClassificationCorrection.clue_id == clue.id)
            .order_by(ClassificationCorrection.created_at, ClassificationCorrection.id)
        )
    ).all()
    corrections = [
        CorrectionView(
            id=row.id,
            old_labels=_labels(row.old_labels),
            new_labels=_labels(row.new_labels),
            taxonomy_version=row.taxonomy_version,
            reason=opener.open(row.reason, _binding(row.id)).decode("utf-8"),
            actor=row.actor,
            created_at=row.created_at,
        )
        for row in rows
    ]
    await audit_service.record(
        session,
        actor=principal.actor,
        action="clue.classification_read",
        object_type="clue",
        object_id=clue.id,
        details={"fields": ["classification", "correction_reasons"], "corrections": len(corrections)},
    )
    return ClassificationView(
        clue_id=clue.id,
        labels=_in_taxonomy_order({c.category for c in clue.categories}),
        needs_triage=clue.needs_triage,
        taxonomy_version=clue.taxonomy_version,
        corrected=bool(corrections),
        machine=machine,
        corrections=corrections,
    )


@dataclass(frozen=True)
class ExportReport:
    rows: int
    skipped: int  # corrections whose labels no longer fit the taxonomy in force
    compartmented: int = 0  # clues whose text opens only with a person's key (compartments): not exported


async def export_corrections(session: AsyncSession, *, keys: KeyRing, actor: str, write) -> ExportReport:  # type: ignore[no-untyped-def]
    """Write each corrected clue once, with its latest correction's labels, as an ``--eval`` line
    ``{"id", "text", "labels"}`` through ``write(line)``. The text is the masked text staff see (personal
    data the reporter wrote stays under the identity key). Audited as an export."""
    latest: dict[str, list[str]] = {}
    rows = await session.execute(
        select(ClassificationCorrection.clue_id, ClassificationCorrection.new_labels).order_by(
            ClassificationCorrection.created_at, ClassificationCorrection.id
        )
    )
    for clue_id, new_labels in rows.all():
        latest[clue_id] = _labels(new_labels)
    written = skipped = compartmented = 0
    clue_ids = sorted(latest)
    for start in range(0, len(clue_ids), EXPORT_BATCH):
        chunk = clue_ids[start : start + EXPORT_BATCH]
        contents = await session.execute(select(Clue.id, Clue.content).where(Clue.id.in_(chunk)))
        for clue_id, sealed in sorted(contents.all()):
            if sealed == NO_CASE_COPY:
                compartmented += 1  # no case-key copy: the command line holds no key that opens it
                continue
            text = json.loads(keys.open(sealed, f"clues/{clue_id}/content")).get("text") or ""
            try:
                line = classifier.labelled_example(example_id=clue_id, text=text, labels=latest[clue_id])
            except classifier.InvalidLabelsError:
                skipped += 1
                continue
            if not line["labels"]:
                skipped += 1
                continue
            write(json.dumps(line, ensure_ascii=False) + "\n")
            written += 1
    await audit_service.record(
        session,
        actor=actor,
        action="classification.corrections_exported",
        object_type="registry",
        object_id="classification_corrections",
        details={
            "rows": written,
            "skipped": skipped,
            "compartmented": compartmented,
            "fields": ["masked_text", "labels"],
        },
    )
    return ExportReport(written, skipped, compartmented)


# --- The learned model --------------------------------------------------------------------------------


async def record_model_training(session: AsyncSession, *, actor: str, comparison: dict[str, Any]) -> None:
    """Audit one training run: the candidate against the model in force on the frozen test split, and
    whether it was put in force. Figures and versions only (the corpus and corrections stay out)."""
    await audit_service.record(
        session,
        actor=actor,
        action="classification.model_trained",
        object_type="classification_model",
        object_id=str(comparison["candidate"])[:64],
        details={
            key: comparison[key]
            for key in (
                "candidate",
                "in_force",
                "accepted",
                "test_macro_f1",
                "dev_macro_f1",
                "dev_test_gap",
                "test_sha256",
                "training",
            )
            if key in comparison
        },
    )


# --- The taxonomy in force ---------------------------------------------------------------------------


def taxonomy_summary() -> dict[str, Any]:
    taxonomy = classifier.current_taxonomy()
    return {
        "version": taxonomy.version,
        "categories": [
            {
                "id": c.id,
                "tier": c.tier,
                "name": c.name,
                "description": c.description,
                "requires_actor": c.requires_actor,
                "terms": len(c.terms),
                "patterns": len(c.patterns),
                "counter_terms": len(c.counter_terms),
            }
            for c in taxonomy.categories
        ],
    }


async def reload_taxonomy(session: AsyncSession, *, path: Path | None, actor: str) -> dict[str, Any]:
    """Load the configured file again in THIS process; a bad file is refused and the old one stays."""
    previous = classifier.current_taxonomy().version
    try:
        taxonomy = classifier.reload_taxonomy(path)
    except classifier.TaxonomyError as exc:
        raise Invalid(
            "分类体系文件无效，原分类体系继续有效", message_en=f"invalid taxonomy, the old one stays: {exc}"
        ) from exc
    except OSError as exc:
        raise Invalid(
            "无法读取分类体系文件，原分类体系继续有效",
            message_en=f"cannot read the taxonomy file ({exc.strerror}), the old one stays",
        ) from exc
    await audit_service.record(
        session,
        actor=actor,
        action="taxonomy.reloaded",
        object_type="taxonomy",
        object_id=taxonomy.version[:64],
        details={
            "previous_version": previous,
            "version": taxonomy.version,
            "categories": len(taxonomy.categories),
            "model_version": model.version if (model := classifier.current_model()) else None,
        },
    )
    return taxonomy_summary()


# --- Near-duplicate links ----------------------------------------------------------------------------


_INSERT_PENDING = insert(NearDuplicatePending.__table__)


def mark_for_near_duplicates(session: Session, signed: list[tuple[str, bytes | None]]) -> None:
    """In the registering transaction: queue the clues, with the keyed signatures intake computed
    (``classifier.near_duplicate_signature``), for the periodic near-duplicate task."""
    execute_many(
        session.connection(),
        _INSERT_PENDING,
        [{"clue_id": clue_id, "signature": signature} for clue_id, signature in signed],
    )


async def link_pending_near_duplicates(runtime: Runtime, *, chunk: int = 10, most: int = 5000) -> int:
    """The periodic task: sign, index and link queued clues, chunk by chunk, taking them off the queue in
    the same transaction as their links. Returns how many new links were made.

    Everything slow — reading, comparing — happens before a chunk's transaction; the
    transaction itself is one synchronous call (on SQLite through the runtime's writer connection, in one
    worker-thread call), so the write lock intake needs is held for the writes alone, never across event
    loop turns."""
    async with runtime.read_session_factory() as reader:
        queued = list((await reader.execute(select(NearDuplicatePending.clue_id).limit(most))).scalars())
    added = 0
    for start in range(0, len(queued), chunk):
        clue_ids = queued[start : start + chunk]
        began = time.monotonic()
        found = await _find_near_duplicates(runtime, clue_ids, NEAR_DUPLICATE_THRESHOLD)
        added += await runtime.write(functools.partial(_record_sync, found=found, dequeue=clue_ids))
        # Background work yields to intake: a writer that waited for this chunk's transaction gets in before
        # the next one starts, and the pause grows with the chunk's cost, so linking takes at most an eighth
        # of a core while reports pour in; the queue is durable, so it catches up when they stop.
        await asyncio.sleep(max(CHUNK_PAUSE_SECONDS, BACKGROUND_PAUSE_FACTOR * (time.monotonic() - began)))
    return added


async def link_near_duplicates(
    session: AsyncSession,
    *,
    runtime: Runtime,
    clue_ids: list[str],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
) -> int:
    """Sign the masked text of each clue (the registry's ``clue_states.near_signature``), index the
    signature in the LSH band table, and link the clues it is at least ``threshold`` similar to among
    those sharing a band bucket (all earlier clues, not a window), in the caller's transaction.
    Idempotent. Returns how many new links were made."""
    found = await _find_near_duplicates(runtime, clue_ids, threshold)
    return await session.run_sync(_record_sync, found=found, dequeue=[])


@dataclass(frozen=True)
class _Found:
    signatures: dict[str, bytes]
    buckets: dict[str, list[tuple[int, int]]]
    pairs: dict[tuple[str, str], float]


async def _find_near_duplicates(runtime: Runtime, clue_ids: list[str], threshold: float) -> _Found:
    """The reading and comparing: in read-only transactions and a worker thread (no write lock on SQLite).
    Intake signed each clue while it held the text: nothing is opened here. A clue queued without a
    signature was registered before intake signed (or re-queued by revision 0024) and is signed from its
    case-key copy, as every item of such a clue opens."""
    async with runtime.read_session_factory() as reader:
        rows = (
            await reader.execute(
                select(
                    Clue.id,
                    Clue.content,
                    func.coalesce(ClueState.near_signature, NearDuplicatePending.signature),
                )
                .outerjoin(ClueState, ClueState.clue_id == Clue.id)
                .outerjoin(NearDuplicatePending, NearDuplicatePending.clue_id == Clue.id)
                .where(Clue.id.in_(clue_ids))
            )
        ).all()
    if not rows:
        return _Found({}, {}, {})
    if not runtime.keys.can_open("case") and any(signature is None for _, _, signature in rows):
        # Old clues queued unsigned need the case key: fail loudly and leave the queue as it is (skipping
        # would take them off it unlinked).
        raise RuntimeError(
            "near-duplicate linking of clues queued before intake signed needs the case private key"
        )
    key = runtime.lookup_key(dedup.KEY_LABEL)  # signatures and bands are keyed: see dedup
    signatures = await asyncio.to_thread(_sign, runtime.keys, rows, key)
    buckets = {clue_id: dedup.band_buckets(sig, key=key) for clue_id, sig in signatures.items()}
    wanted = {pair for pairs in buckets.values() for pair in pairs}
    async with runtime.read_session_factory() as reader:
        # Bounded: a flood of copies of one text must not make each new copy compare with all earlier
        # ones (the newest MAX_CANDIDATES sharing a bucket are enough to link it to its family).
        candidate_ids = (
            select(NearDuplicateBand.clue_id)
            .where(tuple_(NearDuplicateBand.band, NearDuplicateBand.bucket).in_(sorted(wanted)))
            .limit(MAX_CANDIDATES * 4)  # index rows, before de-duplication; any such subset will do
            .subquery()
        )
        candidates = (
            await reader.execute(
                select(ClueState.clue_id, ClueState.near_signature)
                .where(ClueState.clue_id.in_(select(candidate_ids.c.clue_id)))
                .limit(MAX_CANDIDATES)
            )
        ).all()
    pairs = await asyncio.to_thread(_compare, signatures, candidates, threshold)
    return _Found(signatures, buckets, pairs)


def _record_sync(session: Session, *, found: _Found, dequeue: list[str]) -> int:
    """The writes: signatures, band index rows, new links, and the queue rows taken off. Idempotent."""
    signatures, buckets, pairs = found.signatures, found.buckets, found.pairs
    if dequeue:
        session.execute(delete(NearDuplicatePending).where(NearDuplicatePending.clue_id.in_(dequeue)))
    if not signatures:
        return 0
    states = {
        state.clue_id: state
        for state in session.execute(
            select(ClueState).where(ClueState.clue_id.in_(list(signatures)))
        ).scalars()
    }
    for clue_id, signature in signatures.items():
        state = states.get(clue_id)
        if state is None:
            state = ClueState(
                clue_id=clue_id, key_clue=False, leader_takes_case=False, difficult=False, cleared=False
            )
            session.add(state)
        if state.near_signature is None:
            state.near_signature = signature
    session.flush()
    indexed = set(
        session.execute(
            select(NearDuplicateBand.clue_id)
            .where(NearDuplicateBand.clue_id.in_(list(signatures)))
            .distinct()
        ).scalars()
    )
    band_rows = [
        {"band": band, "bucket": bucket, "clue_id": clue_id}
        for clue_id, pairs_of in buckets.items()
        if clue_id not in indexed
        for band, bucket in set(pairs_of)
    ]
    if band_rows:
        session.execute(insert(NearDuplicateBand.__table__), band_rows)
    if not pairs:
        return 0
    # Every pair has one of this chunk's clues in it: only their links can already exist (from an earlier
    # run), not the thousands a flood's old copies have among themselves.
    chunk_ids = list(signatures)
    existing = {
        (a, b)
        for a, b in session.execute(
            select(ClueLink.clue_id, ClueLink.other_id).where(
                ClueLink.kind == NEAR_DUPLICATE,
                or_(ClueLink.clue_id.in_(chunk_ids), ClueLink.other_id.in_(chunk_ids)),
            )
        )
    }
    now = utcnow()
    new_links = [
        {"clue_id": a, "other_id": b, "kind": NEAR_DUPLICATE, "similarity": score, "created_at": now}
        for (a, b), score in sorted(pairs.items())
        if (a, b) not in existing
    ]
    if new_links:  # Core: a flood of copies links each new one to up to MAX_CANDIDATES others
        session.execute(insert(ClueLink.__table__), new_links)
    return len(new_links)


def _sign(keys: KeyRing, rows: Sequence[Any], key: bytes) -> dict[str, bytes]:
    """CPU only (a worker thread): the stored keyed signatures; an old clue without one is signed from its
    case-key copy."""
    signatures: dict[str, bytes] = {}
    for clue_id, sealed, signature in rows:
        if signature is None:
            try:
                text = json.loads(keys.open(sealed, f"clues/{clue_id}/content")).get("text") or ""
            except EnvelopeError:
                # One clue that cannot be opened (a key rotated away, a damaged row) is left unsigned and
                # taken off the queue with its chunk; it must not stop every clue queued behind it.
                log.warning("near-duplicates: the content of clue %s cannot be opened; not linked", clue_id)
                continue
            signature = classifier.near_duplicate_signature(text, key=key)
        signatures[clue_id] = signature
    return signatures


def _compare(
    signatures: dict[str, bytes], candidates: Sequence[Any], threshold: float
) -> dict[tuple[str, str], float]:
    """CPU only: the pairs at or above ``threshold`` among the new clues and their LSH candidates."""
    others = {cid: sig for cid, sig in candidates if sig is not None}
    others.update(signatures)  # the batch's own clues compare with each other too
    pairs: dict[tuple[str, str], float] = {}
    for clue_id, signature in signatures.items():
        for other_id, other in others.items():
            if other_id != clue_id and len(other) == len(signature):
                score = classifier.signature_similarity(signature, other)
                if score >= threshold:
                    pairs[(min(clue_id, other_id), max(clue_id, other_id))] = round(score, 3)
    return pairs


async def linked_clues(
    session: AsyncSession, *, clue_id: str, kind: str = NEAR_DUPLICATE
) -> list[dict[str, Any]]:
    """The clues linked to ``clue_id`` (either side of the pair), most similar first. No content."""
    rows = await session.execute(
        select(ClueLink.clue_id, ClueLink.other_id, ClueLink.similarity).where(
            ClueLink.kind == kind, or_(ClueLink.clue_id == clue_id, ClueLink.other_id == clue_id)
        )
    )
    scores = {(b if a == clue_id else a): score for a, b, score in rows.all()}
    if not scores:
        return []
    clues = await session.execute(
        select(Clue.id, Clue.registry_number, Clue.channel, Clue.status).where(Clue.id.in_(scores))
    )
    linked = [
        {
            "id": cid,
            "registry_number": number,
            "channel": channel,
            "status": status,
            "similarity": round(scores[cid] or 0.0, 2),
            "linked": True,
        }
        for cid, number, channel, status in clues.all()
    ]
    return sorted(linked, key=lambda item: (-item["similarity"], item["registry_number"]))


async def related_clues(
    session: AsyncSession, *, clue_id: str, principal: Principal
) -> dict[str, list[dict[str, Any]]]:
    """Other clues about the same accused person (any channel), and near-duplicate texts."""
    clue = await get_visible_clue(session, clue_id=clue_id, principal=principal)
    same: list[dict[str, Any]] = []
    if clue.accused_key:
        rows = await session.execute(
            select(Clue.id, Clue.registry_number, Clue.channel, Clue.status, Clue.received_at)
            .where(Clue.accused_key == clue.accused_key, Clue.id != clue.id)
            .order_by(Clue.received_at)
        )
        same = [dict(r._mapping) for r in rows.all()]
    near: list[dict[str, Any]] = []
    state = await session.get(ClueState, clue.id)
    if state is not None and state.near_signature:
        rows = await session.execute(
            select(
                ClueState.clue_id, ClueState.near_signature, Clue.registry_number, Clue.channel, Clue.status
            )
            .join(Clue, Clue.id == ClueState.clue_id)
            .where(ClueState.near_signature.is_not(None), ClueState.clue_id != clue.id)
            .order_by(Clue.received_at.desc())
            .limit(NEAR_DUPLICATE_WINDOW)
        )
        for other_id, signature, number, channel, status in rows.all():
            score = classifier.signature_similarity(state.near_signature, signature)
            if score >= NEAR_DUPLICATE_THRESHOLD:
                near.append(
                    {
                        "id": other_id,
                        "registry_number": number,
                        "channel": channel,
                        "status": status,
                        "similarity": round(score, 2),
                    }
                )
        near.sort(key=lambda item: -item["similarity"])
    # Near-duplicate links stored by the classification job: shown first, marked.
    linked = await linked_clues(session, clue_id=clue.id)
    near = linked + [item for item in near if item["id"] not in {link["id"] for link in linked}]
    return {"same_accused": same, "near_duplicates": near}
