"""From raw mail to a durable outcome: a clue, filtered mail, or quarantine — committed before returning.

``MailIngest(runtime)`` is the receiver's (and the IMAP poller's) ``ingest(raw)`` callback:

1. parse (``parse.parse_message``: never raises);
2. deduplicate: ``dedupe_key`` is HMAC(lookup_key("mail-dedupe"), Message-ID digest ‖ SHA-256 of the raw
   bytes), unique, checked inside the committing transaction. A sending server that retries after a crash
   between our commit and our ``250`` sends the same bytes, finds the row, and gets ``250`` without a
   second clue. A concurrent duplicate loses on the unique index and is treated the same way;
3. by kind:
   - ``report`` → attachments through the web channel's pipeline (their keys held in memory and sealed
     to the clue's own key at registration), then the intake entry's group commit
     (``runtime.intake.register``): the tip is prepared (classified, sealed) outside any transaction, and
     the batcher registers it together with whatever other tips (mail or web) are waiting, in one
     transaction. Our own writes — the ``mail_received`` row (the dedupe check),
     attachment rows, the acknowledgement and notifications — run in that same transaction through the
     batcher's ``also`` hook. A duplicate raises there, so its batch fails and is retried tip by tip: the
     duplicate fails alone and the others commit. The submitter is the parsed identity (identity key), the
     parser's lossy notes go in ``details`` (in the clue's content, under its own key);
   - ``auto_reply`` / ``bounce`` / ``spam`` → filtered: masked subject and body sealed to the identity key
     (a custodian reads them, as quarantined mail), kept for ``TIPLINE_MAIL_FILTERED_RETENTION_HOURS`` (the
     purge task destroys the envelope), counted;
   - ``unparseable`` → quarantined: the raw message sealed whole to the identity key;
4. commit. Only then does the caller answer ``250`` (or mark/move the IMAP message).

Large messages are parsed in a worker process (``service.platform.workers``) so that MIME parsing, the most
expensive CPU step, runs beside the event loop instead of on it; the raw bytes go over a pipe, never to a
file.

A database that cannot be reached raises ``receiver.TemporarilyUnavailable`` (SMTP ``451``).
Nothing here logs anything about the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments import service as attachments_service
from service.attachments.pipeline import AttachmentRecord, AttachmentTooLarge, WrapKey, store_attachment
from service.attachments.service import UploadedFile, keep_key
from service.attachments.sniff import DisallowedFileType
from service.audit import service as audit_service
from service.audit.service import PUBLIC_ACTOR, SYSTEM_ACTOR, PendingEntry
from service.classification import classifier
from service.compartments import items as clue_items
from service.intake.service import Submission, SubmittedTip
from service.mail.parse import ParsedMail, parse_message
from service.mail.receiver import (
    RunningReceiver,
    TemporarilyUnavailable,
    serve_receiver,
    tls_context_from_files,
)
from service.mailbox.models import CLUE, FILTERED, QUARANTINED, ReceivedMail, sealed_binding
from service.notify import service as notify_service
from service.platform.blobs import BlobStore, LocalBlobStore
from service.platform.db import new_id
from service.platform.runtime import Runtime
from service.platform.timeutil import hour_floor, utcnow
from service.platform.workers import WorkerPool, WorkerUnavailable, default_worker_count

log = logging.getLogger("tipline.mail")

DUPLICATE = "duplicate"
NO_TEXT = "（邮件没有正文 / the mail has no text）"
# Parse (and store attachments) in a worker process above this size: off the event loop, on another core.
# Smaller messages are handled faster here than the round trip to the worker costs.
POOL_BYTES = 32 * 1024
_UNAVAILABLE = (OperationalError, PoolTimeout, ConnectionError, OSError, asyncio.TimeoutError)


def dedupe_key(runtime: Runtime, parsed: ParsedMail) -> str:
    key = runtime.lookup_key("mail-dedupe")
    material = f"{parsed.message_id_digest or '-'}\x00{parsed.content_hash}".encode()
    return hmac.new(key, material, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Stored:
    record: AttachmentRecord
    filename: str


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    step = 256 * 1024
    for start in range(0, len(data), step):
        yield data[start : start + step]


@dataclass(frozen=True)
class _Prepared:
    """A parsed message and its attachments already stored as ciphertext (report mail only)."""

    parsed: ParsedMail
    stored: list[_Stored]
    left_out: list[str]


@dataclass(frozen=True)
class _Unwrapped:
    """An attachment stored by a worker process; its file key travels back to be wrapped here."""

    record: AttachmentRecord  # wrapped_key empty
    file_key: bytes
    filename: str


_WORKER_LOOP: asyncio.AbstractEventLoop | None = None


def _worker_loop() -> asyncio.AbstractEventLoop:
    """One event loop per worker process, kept (a new one per message would start new threads each time)."""
    global _WORKER_LOOP
    if _WORKER_LOOP is None:
        _WORKER_LOOP = asyncio.new_event_loop()
    return _WORKER_LOOP


def _prepare_in_worker(
    raw: bytes, store_root: str, max_size: int, scratch_dir: str
) -> tuple[ParsedMail, list[_Unwrapped], list[str]]:
    """In a worker process: parse, and store a report's attachments (sniff, sanitise, encrypt, write, fsync).
    The attachments' plaintext stays in the worker; the parent wraps each file key to the case key."""
    parsed = parse_message(raw)
    if parsed.kind != "report" or not parsed.attachments:
        return parsed, [], []
    stored, left_out = _worker_loop().run_until_complete(
        _store_all(parsed, LocalBlobStore(store_root), keep_key, keep_key, max_size, Path(scratch_dir))
    )
    unwrapped = [
        _Unwrapped(dataclasses.replace(item.record, wrapped_key=b""), item.record.wrapped_key, item.filename)
        for item in stored
    ]
    return dataclasses.replace(parsed, attachments=()), unwrapped, left_out


async def _store_all(
    parsed: ParsedMail, store: BlobStore, wrap_key: WrapKey, wrap_sealed: WrapKey, limit: int, scratch: Path
) -> tuple[list[_Stored], list[str]]:
    """Each attachment through the web channel's pipeline (one that cannot be cleaned is sealed with
    ``wrap_sealed``, the identity key); refused ones are left out with a note. On any other failure no
    blob of this message stays behind."""
    stored: list[_Stored] = []
    left_out: list[str] = []
    try:
        for attachment in parsed.attachments:
            try:
                record = await store_attachment(
                    _one_chunk(attachment.data),
                    store=store,
                    wrap_key=wrap_key,
                    max_size=limit,
                    wrap_sealed_key=wrap_sealed,
                    scratch_dir=scratch,
                )
            except DisallowedFileType:
                left_out.append("an attachment of a type that is not accepted was left out")
                continue
            except AttachmentTooLarge:
                left_out.append("an attachment over the size limit was left out")
                continue
            stored.append(_Stored(record, attachment.filename))
    except BaseException:
        await _discard(store, stored)
        raise
    return stored, left_out


async def _discard(store: BlobStore, stored: list[_Stored]) -> None:
    for item in stored:  # nothing refers to them: do not leave ciphertext behind
        with contextlib.suppress(Exception):
            await store.delete(item.record.blob_id)


WORKER_POOL = WorkerPool(default_worker_count())


class MailIngest:
    """``await ingest(raw)`` → "clue", "filtered", "quarantined" or "duplicate", after the commit."""

    def __init__(self, runtime: Runtime, *, store: BlobStore | None = None, via: str = "smtp") -> None:
        self.runtime = runtime
        self.store = store or runtime.blobs
        self.via = via

    async def __call__(self, raw: bytes) -> str:
        prepared = await self._prepare(raw)
        parsed = prepared.parsed
        key = dedupe_key(self.runtime, parsed)
        try:
            if parsed.kind == "report":
                return await self._report(raw, prepared, key)
            return await self._commit_other(raw, parsed, key)
        except _Duplicate:
            return DUPLICATE
        except (*_UNAVAILABLE, DBAPIError) as exc:
            # Unreachable, gone, refusing connections, locked: the sender must retry (451). Anything else
            # that goes wrong is answered 451 by the receiver too, so mail is never lost either way.
            raise TemporarilyUnavailable(type(exc).__name__) from None

    async def _prepare(self, raw: bytes) -> _Prepared:
        """Parse, and store a report's attachments: in a worker process for large messages."""
        if len(raw) > POOL_BYTES and isinstance(self.store, LocalBlobStore):
            limit = self.runtime.settings.mail_attachment_max_bytes
            scratch = self.runtime.settings.attachment_scratch_dir
            try:
                parsed, unwrapped, left_out = await WORKER_POOL.run(
                    _prepare_in_worker, raw, str(self.store.root), limit, str(scratch)
                )
            except WorkerUnavailable:
                pass
            else:
                keys = self.runtime.keys
                stored = [
                    _Stored(
                        dataclasses.replace(
                            item.record,
                            # A sealed file (not cleanable) is for the identity key only; a cleaned
                            # one's key stays in memory until registration seals it to the clue's key.
                            wrapped_key=keys.seal_identity(item.file_key, item.record.binding)
                            if item.record.sealed_reason
                            else item.file_key,
                        ),
                        item.filename,
                    )
                    for item in unwrapped
                ]
                return _Prepared(parsed, stored, left_out)
        parsed = parse_message(raw)
        if parsed.kind != "report":
            return _Prepared(parsed, [], [])
        limit = self.runtime.settings.mail_attachment_max_bytes
        scratch = self.runtime.settings.attachment_scratch_dir
        keys = self.runtime.keys
        stored, left_out = await _store_all(parsed, self.store, keep_key, keys.seal_identity, limit, scratch)
        return _Prepared(parsed, stored, left_out)

    async def _report(self, raw: bytes, prepared: _Prepared, key: str) -> str:
        runtime = self.runtime
        now = hour_floor(utcnow())  # received mail keeps the hour only, as an anonymous report does
        parsed, stored = prepared.parsed, prepared.stored
        try:
            submission = Submission(
                text=parsed.text or NO_TEXT,
                channel="email",
                submitter=dict(parsed.identity),
                received_at=now,
                details={"mail": {"lossy": [*parsed.lossy, *prepared.left_out], "attachments": len(stored)}},
            )
            tip = await runtime.intake.prepare(submission, actor=PUBLIC_ACTOR)
        except BaseException:
            await _discard(self.store, stored)
            raise

        async def also(session: AsyncSession, submitted: SubmittedTip) -> list[audit_service.PendingEntry]:
            return await self._record(session, raw, parsed, key, stored, submitted, now)

        try:
            await runtime.intake.register(tip, also=also)
        except IntegrityError:
            # The batch failed and this tip, retried alone, failed again on a unique index. If that was the
            # dedupe key, the message is already here: answer as for any redelivery. Anything else is a
            # real failure (451, the sender retries).
            if not await self._already_received(key):
                raise
            # Definitely not committed (the transaction failed before its commit): nothing refers to the
            # blobs. After any other failure the commit's fate may be unknown (a connection lost during
            # COMMIT), so the blobs stay and the orphan sweep (``attachments.sweep_orphans``) decides later.
            await _discard(self.store, stored)
            raise _Duplicate from None
        return CLUE

    async def _already_received(self, key: str) -> bool:
        async with self.runtime.session_factory() as session:
            found = await session.scalar(select(ReceivedMail.id).where(ReceivedMail.dedupe_key == key))
            await session.rollback()
        return found is not None

    async def _record(
        self,
        session: AsyncSession,
        raw: bytes,
        parsed: ParsedMail,
        key: str,
        stored: list[_Stored],
        tip: SubmittedTip,
        now: datetime,
    ) -> list[audit_service.PendingEntry]:
        """The mail channel's writes in the batch's transaction, after the tip's registration: rows added,
        not flushed (each round trip here would hold up the whole batch's commit). They go out, for the whole
        batch at once, in the flush before the commit, where a redelivery's ``mail_received`` row fails on
        the unique ``dedupe_key``; the batch is then retried tip by tip, so the duplicate fails alone.
        Returns the attachments' audit entry, which the batch appends with its others."""
        runtime = self.runtime
        session.add(self._row(key, parsed, raw, len(stored), now, outcome=CLUE, clue_id=tip.clue_id))
        _, entry = attachments_service.stage_attachments(
            session,
            clue_id=tip.clue_id,
            message_id=None,
            files=[
                UploadedFile(item.record, item.filename, key_pending=not item.record.sealed_reason)
                for item in stored
            ],
            keys=runtime.keys,
            actor=PUBLIC_ACTOR,
            hour_only=True,
            # The cleaned files' keys, in memory since parsing, go to the clue's own key (just registered).
            seal_pending=await clue_items.sealer(session, clue_id=tip.clue_id, keys=runtime.keys),
        )
        entries = [entry] if entry is not None else []
        if notify_service.relay_configured(runtime):
            addresses = parsed.identity.get("from_address") or []
            if addresses:
                await notify_service.queue_acknowledgement(
                    session, runtime=runtime, to_address=addresses[0], receipt=tip.receipt
                )
            # The link names no clue: an outbox row's exact times must not bound when this (hour-only)
            # report arrived.
            await notify_service.notify_supervisors(
                session, runtime=runtime, event="new_clue", path="/staff/registry?status=registered"
            )
        return entries

    def _row(
        self,
        key: str,
        parsed: ParsedMail,
        raw: bytes,
        attachments: int,
        now: datetime,
        *,
        outcome: str,
        clue_id: str | None = None,
    ) -> ReceivedMail:
        return ReceivedMail(
            id=new_id(hour_only=True),
            dedupe_key=key,
            kind=parsed.kind,
            reason=(parsed.kind_reason or "")[:120],
            via=self.via,
            size=len(raw),
            attachments=attachments,
            outcome=outcome,
            clue_id=clue_id,
            received_at=now,
        )

    async def _claim(
        self,
        session: AsyncSession,
        key: str,
        parsed: ParsedMail,
        raw: bytes,
        attachments: int,
        now: datetime,
        *,
        outcome: str,
        clue_id: str | None = None,
    ) -> ReceivedMail:
        """Insert this message's ``mail_received`` row, or raise ``_Duplicate`` if it was already received.
        Checked inside the committing transaction (a second transaction per message would cost a lock and
        a sync on SQLite); a concurrent duplicate in another transaction loses on the unique index."""
        if await session.scalar(select(ReceivedMail.id).where(ReceivedMail.dedupe_key == key)):
            raise _Duplicate
        row = self._row(key, parsed, raw, attachments, now, outcome=outcome, clue_id=clue_id)
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:
            raise _Duplicate from None
        return row

    async def _commit_other(self, raw: bytes, parsed: ParsedMail, key: str) -> str:
        """Filtered or quarantined mail: no tip, so one transaction of its own."""
        runtime = self.runtime
        now = hour_floor(utcnow())  # received mail keeps the hour only, as an anonymous report does
        async with runtime.session_factory() as session:
            try:
                row = await self._claim(
                    session,
                    key,
                    parsed,
                    raw,
                    0,
                    now,
                    outcome=QUARANTINED if parsed.kind == "unparseable" else FILTERED,
                )
                if row.outcome == QUARANTINED:
                    row.sealed = runtime.keys.seal_identity(raw, sealed_binding(row.id))
                else:
                    # A custodian may read filtered mail to spot a misfiled report (masked, as a report's
                    # text is), as quarantined mail: sealed to the identity key, opened on the custodial
                    # machine. The originals are not kept (filtered mail is never made a clue).
                    masked = classifier.mask_texts({"subject": parsed.subject, "body": parsed.body})
                    content = {"kind": parsed.kind, **masked.texts}
                    row.sealed = runtime.keys.seal_identity(_json(content), sealed_binding(row.id))
                    row.expires_at = now + timedelta(hours=runtime.settings.mail_filtered_retention_hours)
                await session.flush()
                if row.outcome == QUARANTINED:
                    quarantined = {"size": row.size}
                    await audit_service.record_many(
                        session,
                        [
                            PendingEntry(
                                SYSTEM_ACTOR, "mail.quarantined", "mail", row.id, quarantined, hour_only=True
                            )
                        ],
                    )
                    await notify_service.notify_supervisors(
                        session, runtime=runtime, event="mail_quarantined", path="/api/v1/mail/quarantine"
                    )
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise _Duplicate from None
            except _Duplicate:
                await session.rollback()
                raise
            return row.outcome


class _Duplicate(Exception):
    pass


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def tls_context(runtime: Runtime):  # type: ignore[no-untyped-def]
    settings = runtime.settings
    if settings.smtp_tls_cert and settings.smtp_tls_key:
        return tls_context_from_files(str(settings.smtp_tls_cert), str(settings.smtp_tls_key))
    return None


async def start(runtime: Runtime, *, port: int | None = None) -> RunningReceiver:
    """The SMTP receiver on the running loop, ingesting into this runtime's database."""
    settings = runtime.settings
    receiver = await serve_receiver(
        settings.smtp_host,
        settings.smtp_port if port is None else port,
        MailIngest(runtime),
        settings.mail_accepted_addresses,
        settings.smtp_max_bytes,
        tls_context(runtime),
        server_hostname=settings.smtp_hostname,
    )
    log.info("SMTP receiver listening", extra={"port": receiver.port})
    return receiver


@contextlib.asynccontextmanager
async def running_receiver(app: object, runtime: Runtime) -> AsyncIterator[RunningReceiver]:
    """For an app's lifespan (``tipline serve`` with the mail role)."""
    receiver = await start(runtime)
    if app is not None:
        app.state.smtp_receiver = receiver  # type: ignore[attr-defined]
    try:
        yield receiver
    finally:
        await receiver.stop()
