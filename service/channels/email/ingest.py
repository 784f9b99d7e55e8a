"""From raw mail to a durable outcome: a clue, filtered mail, or quarantine — committed before returning.

``MailIngest(runtime)`` is the receiver's (and the IMAP poller's) ``ingest(raw)`` callback:

1. parse (``parse.parse_message``: never raises);
2. deduplicate: ``dedupe_key`` is HMAC(lookup_key("mail-dedupe"), Message-ID digest ‖ SHA-256 of the raw
   bytes). A sending server that retries after a crash between our commit and our ``250`` sends the same
   bytes, finds the row, and gets ``250`` without a second clue. A concurrent duplicate loses on the unique
   index and is treated the same way;
3. by kind:
   - ``report`` → attachments through the web channel's pipeline (keys wrapped to the case key), then
     ``intake.service.submit_tip`` with channel ``email``, the parsed identity as the submitter (identity
     key) and the parser's lossy notes in ``details`` (case key); an acknowledgement is queued in the
     outbox when a relay is configured;
   - ``auto_reply`` / ``bounce`` / ``spam`` → filtered: subject and body sealed to the case key, kept for
     ``TIPLINE_MAIL_FILTERED_RETENTION_HOURS`` (the purge task destroys the envelope), counted;
   - ``unparseable`` → quarantined: the raw message sealed whole to the identity key;
4. commit. Only then does the caller answer ``250`` (or mark/move the IMAP message).

A database that cannot be reached raises ``receiver.TemporarilyUnavailable`` (SMTP ``451``).
Nothing here logs anything about the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from service.attachments.pipeline import AttachmentRecord, AttachmentTooLarge, store_attachment
from service.attachments.sniff import DisallowedFileType
from service.attachments.storage import BlobStore, LocalBlobStore
from service.audit import service as audit_service
from service.audit.service import PUBLIC_ACTOR, SYSTEM_ACTOR
from service.channels.email.models import CLUE, FILTERED, QUARANTINED, ReceivedMail, sealed_binding
from service.channels.email.parse import ParsedMail, parse_message
from service.channels.email.receiver import RunningReceiver, TemporarilyUnavailable, serve_receiver
from service.db import new_id
from service.intake.service import Submission, submit_tip
from service.notify import service as notify_service
from service.runtime import Runtime
from service.timeutil import utcnow

log = logging.getLogger("tipline.mail")

DUPLICATE = "duplicate"
NO_TEXT = "（邮件没有正文 / the mail has no text）"
# Parse in a thread above this size so a large message does not stall other SMTP sessions.
THREAD_PARSE_BYTES = 256 * 1024
_UNAVAILABLE = (OperationalError, PoolTimeout, ConnectionError, OSError, asyncio.TimeoutError)


def dedupe_key(runtime: Runtime, parsed: ParsedMail) -> str:
    key = runtime.lookup_key("mail-dedupe")
    material = f"{parsed.message_id_digest or '-'}\x00{parsed.content_hash}".encode()
    return hmac.new(key, material, hashlib.sha256).hexdigest()


def blob_store_for(runtime: Runtime) -> BlobStore:
    """The same store the web channel uses (TIPLINE_WEB_BLOB_DIR, default <data_dir>/blobs)."""
    from service.channels.web.settings import WebSettings

    root: Path = WebSettings().blob_dir or runtime.settings.data_dir / "blobs"
    return LocalBlobStore(root)


@dataclass(frozen=True)
class _Stored:
    record: AttachmentRecord
    filename: str


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    step = 256 * 1024
    for start in range(0, len(data), step):
        yield data[start : start + step]


class MailIngest:
    """``await ingest(raw)`` → "clue", "filtered", "quarantined" or "duplicate", after the commit."""

    def __init__(self, runtime: Runtime, *, store: BlobStore | None = None, via: str = "smtp") -> None:
        self.runtime = runtime
        self.store = store or blob_store_for(runtime)
        self.via = via

    async def __call__(self, raw: bytes) -> str:
        if len(raw) > THREAD_PARSE_BYTES:
            parsed = await asyncio.to_thread(parse_message, raw)
        else:
            parsed = parse_message(raw)
        key = dedupe_key(self.runtime, parsed)
        try:
            stored, left_out = ([], []) if parsed.kind != "report" else await self._store_attachments(parsed)
            try:
                return await self._commit(raw, parsed, key, stored, left_out)
            except BaseException:
                for item in stored:  # nothing refers to them: do not leave ciphertext behind
                    with contextlib.suppress(Exception):
                        await self.store.delete(item.record.blob_id)
                raise
        except _Duplicate:
            return DUPLICATE
        except (*_UNAVAILABLE, DBAPIError) as exc:
            # Unreachable, gone, refusing connections, locked: the sender must retry (451). Anything else
            # that goes wrong is answered 451 by the receiver too, so mail is never lost either way.
            raise TemporarilyUnavailable(type(exc).__name__) from None

    async def _store_attachments(self, parsed: ParsedMail) -> tuple[list[_Stored], list[str]]:
        stored: list[_Stored] = []
        left_out: list[str] = []
        keys = self.runtime.keys
        limit = self.runtime.settings.mail_attachment_max_bytes
        try:
            for attachment in parsed.attachments:
                try:
                    record = await store_attachment(
                        _one_chunk(attachment.data),
                        store=self.store,
                        wrap_key=keys.seal_case,
                        max_size=limit,
                    )
                except DisallowedFileType:
                    left_out.append("an attachment of a type that is not accepted was left out")
                    continue
                except AttachmentTooLarge:
                    left_out.append("an attachment over the size limit was left out")
                    continue
                stored.append(_Stored(record, attachment.filename))
        except BaseException:
            for item in stored:
                with contextlib.suppress(Exception):
                    await self.store.delete(item.record.blob_id)
            raise
        return stored, left_out

    async def _commit(
        self, raw: bytes, parsed: ParsedMail, key: str, stored: list[_Stored], left_out: list[str]
    ) -> str:
        runtime = self.runtime
        now = utcnow()
        async with runtime.session_factory() as session:
            # Checked inside the one transaction (a second transaction per message costs a lock and a
            # sync on SQLite); a concurrent duplicate still loses on the unique index below.
            if await session.scalar(select(ReceivedMail.id).where(ReceivedMail.dedupe_key == key)):
                await session.rollback()
                raise _Duplicate
            row = ReceivedMail(
                id=new_id(),
                dedupe_key=key,
                kind=parsed.kind,
                reason=(parsed.kind_reason or "")[:120],
                via=self.via,
                size=len(raw),
                attachments=len(stored),
                received_at=now,
            )
            if parsed.kind == "report":
                row.outcome = CLUE
                row.clue_id = await self._submit(session, parsed, stored, left_out, now)
            elif parsed.kind == "unparseable":
                row.outcome = QUARANTINED
                row.sealed = runtime.keys.seal_identity(raw, sealed_binding(row.id))
            else:
                row.outcome = FILTERED
                content = {"kind": parsed.kind, "subject": parsed.subject, "body": parsed.body}
                row.sealed = runtime.keys.seal_case(_json(content), sealed_binding(row.id))
                row.expires_at = now + timedelta(hours=runtime.settings.mail_filtered_retention_hours)
            session.add(row)
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                raise _Duplicate from None
            if row.outcome == QUARANTINED:
                await audit_service.record(
                    session,
                    actor=SYSTEM_ACTOR,
                    action="mail.quarantined",
                    object_type="mail",
                    object_id=row.id,
                    details={"size": row.size},
                )
                await notify_service.notify_supervisors(
                    session, runtime=runtime, event="mail_quarantined", path="/api/v1/mail/quarantine"
                )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise _Duplicate from None
            return row.outcome

    async def _submit(
        self,
        session: AsyncSession,
        parsed: ParsedMail,
        stored: list[_Stored],
        left_out: list[str],
        now,  # type: ignore[no-untyped-def]
    ) -> str:
        runtime = self.runtime
        lossy = list(parsed.lossy) + left_out
        submission = Submission(
            text=parsed.text or NO_TEXT,
            channel="email",
            submitter=dict(parsed.identity),
            received_at=now,
            details={"mail": {"lossy": lossy, "attachments": len(stored)}},
        )
        tip = await submit_tip(session, runtime=runtime, submission=submission, actor=PUBLIC_ACTOR)
        if stored:
            from service.messages.service import UploadedFile, add_attachments

            await add_attachments(
                session,
                clue_id=tip.clue_id,
                message_id=None,
                files=[UploadedFile(record=item.record, filename=item.filename) for item in stored],
                keys=runtime.keys,
                actor=PUBLIC_ACTOR,
            )
        addresses = parsed.identity.get("from_address") or []
        if addresses:
            await notify_service.queue_acknowledgement(
                session, runtime=runtime, to_address=addresses[0], receipt=tip.receipt
            )
        await notify_service.notify_supervisors(
            session, runtime=runtime, event="new_clue", path=f"/staff/clues/{tip.clue_id}"
        )
        return tip.clue_id


class _Duplicate(Exception):
    pass


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def tls_context(runtime: Runtime):  # type: ignore[no-untyped-def]
    settings = runtime.settings
    if settings.smtp_tls_cert and settings.smtp_tls_key:
        from service.channels.email.receiver import tls_context_from_files

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


async def run_standalone(settings, *, smtp_port: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """``tipline mail-receiver``: the SMTP receiver (and the IMAP poller when TIPLINE_IMAP_HOST is set) in
    a process of their own, until SIGTERM or SIGINT."""
    import signal

    from service.migrations import ensure_schema
    from service.runtime import build_runtime

    runtime = build_runtime(settings, frozenset({"mail"}))
    try:
        await ensure_schema(runtime.engine, auto_upgrade=settings.database_auto_upgrade)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            if smtp_port != 0:
                receiver = await start(runtime, port=smtp_port)
                stack.push_async_callback(receiver.stop)
                print(f"SMTP receiver listening on port {receiver.port}", flush=True)
            if settings.imap_host:
                from service.channels.email.imap import running_poller

                await stack.enter_async_context(running_poller(runtime))
            await stop.wait()
    finally:
        await runtime.close()
