"""One upload, end to end: sniff -> sanitize -> encrypt -> store, streamed.

Invariants:
- Plaintext exists only in memory, one segment (or one small whole-file-kind file under its cap) at a
  time, except for the kinds an external cleaner handles (``cleaners.EXTERNAL_KINDS``: office documents,
  PDF, HEIC, video): those are written, as they arrive, to a private 0700 directory on a tmpfs
  (``Settings.attachment_scratch_dir``), cleaned there and read back into the encryptor; the directory
  is removed when the upload ends, whatever the outcome. The store receives ciphertext only.
- A file an external cleaner cannot clean with confidence (``cleaners.Uncleanable``) is *sealed*: the
  received bytes are stored with their key wrapped by ``wrap_sealed_key`` (the identity key) and the
  record carries the reason; without ``wrap_sealed_key`` it is refused. It is never stored as if clean.
- The size limit is enforced on the bytes *received*, while they arrive; going over it aborts the blob,
  so no partial ciphertext stays behind. Any other failure aborts it too.
- The file key is fresh per attachment and leaves this function only wrapped by the caller's ``wrap_key``
  (HPKE to the case key); the binding ``"attachment/<blob_id>"`` ties the ciphertext to its blob.
- A kept original (``wrap_original_key`` given) is the received bytes, unsanitised, streamed in parallel
  through a second encryptor with its own file key and blob; that key is wrapped by ``wrap_original_key``
  (the identity key: an original's metadata identifies). Either both blobs are committed or neither stays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from service.attachments import archives, cleaners
from service.attachments.sanitize import (
    DEFAULT_WHOLE_FILE_LIMIT,
    SanitizeReport,
    WholeFileLimitExceeded,
    sanitize_stream,
)
from service.attachments.sniff import SNIFF_WINDOW, DisallowedFileType, FileKind, sniff
from service.platform.blobs import BlobStore, BlobWriter, new_blob_id
from service.platform.crypto.stream import DEFAULT_SEGMENT_SIZE, StreamEncryptor, generate_file_key

WrapKey = Callable[[bytes, str], bytes]


class AttachmentTooLarge(Exception):
    """The upload is larger than the configured limit (or than a whole-file kind's in-memory cap)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"attachment larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    blob_id: str
    binding: str
    kind: FileKind
    size: int  # bytes of sanitised plaintext stored
    received_size: int  # bytes as uploaded
    sha256: str  # hex digest of the sanitised plaintext
    segments: int
    removed_metadata: tuple[str, ...]  # fixed labels with counts ("jpeg:APP1/Exif=1"), never file strings
    wrapped_key: bytes
    original: AttachmentRecord | None = None  # the kept original (unsanitised), if one was asked for
    # Set when the file could not be cleaned: the received bytes, key wrapped to the identity key.
    sealed_reason: str | None = None


def attachment_binding(blob_id: str) -> str:
    return f"attachment/{blob_id}"


class _OriginalCopy:
    """The received bytes, encrypted under their own file key into their own blob, as they pass by."""

    def __init__(self, writer: BlobWriter, blob_id: str, segment_size: int) -> None:
        self.writer = writer
        self.blob_id = blob_id
        self.binding = attachment_binding(blob_id)
        self.file_key = generate_file_key()
        self.encryptor = StreamEncryptor(self.file_key, self.binding, segment_size=segment_size)
        self.digest = hashlib.sha256()
        self.size = 0
        self.started = False

    async def feed(self, chunk: bytes) -> None:
        if not self.started:
            self.started = True
            await self.writer.write(self.encryptor.header())
        self.digest.update(chunk)
        self.size += len(chunk)
        if ciphertext := self.encryptor.update(chunk):
            await self.writer.write(ciphertext)

    async def commit(self, kind: FileKind, wrap_key: WrapKey) -> AttachmentRecord:
        if not self.started:
            await self.writer.write(self.encryptor.header())
        await self.writer.write(self.encryptor.finalize())
        wrapped_key = wrap_key(self.file_key, self.binding)
        await self.writer.commit()
        self.file_key = b""
        return AttachmentRecord(
            blob_id=self.blob_id,
            binding=self.binding,
            kind=kind,
            size=self.size,
            received_size=self.size,
            sha256=self.digest.hexdigest(),
            segments=self.encryptor.segments,
            removed_metadata=(),
            wrapped_key=wrapped_key,
        )


async def store_attachment(
    chunks: AsyncIterable[bytes],
    *,
    store: BlobStore,
    wrap_key: WrapKey,
    max_size: int,
    whole_file_limit: int = DEFAULT_WHOLE_FILE_LIMIT,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    wrap_original_key: WrapKey | None = None,
    wrap_sealed_key: WrapKey | None = None,
    scratch_dir: Path | None = None,
) -> AttachmentRecord:
    """Sniff, sanitise, encrypt and store one upload; returns its record (with ``original`` set when
    ``wrap_original_key`` asks for the original to be kept, ``sealed_reason`` when it could not be cleaned
    and was sealed with ``wrap_sealed_key``). ``scratch_dir``: default ``Settings.attachment_scratch_dir``.

    Raises ``DisallowedFileType`` (including ``MalformedFile``) or :class:`AttachmentTooLarge`; in every
    failure no blob remains.
    """
    async with AsyncExitStack() as stack:
        original = None
        if wrap_original_key is not None:
            original_id = new_blob_id()
            writer = await stack.enter_async_context(await store.open_writer(original_id))
            original = _OriginalCopy(writer, original_id, segment_size)
        record = await _store(
            chunks,
            store=store,
            wrap_key=wrap_key,
            max_size=max_size,
            whole_file_limit=whole_file_limit,
            segment_size=segment_size,
            original=original,
            wrap_sealed_key=wrap_sealed_key,
            scratch_dir=scratch_dir,
        )
        if original is None or wrap_original_key is None:
            return record
        try:
            kept = await original.commit(record.kind, wrap_original_key)
        except BaseException:
            await store.delete(record.blob_id)
            raise
    return dataclasses.replace(record, original=kept)


async def _store(
    chunks: AsyncIterable[bytes],
    *,
    store: BlobStore,
    wrap_key: WrapKey,
    max_size: int,
    whole_file_limit: int,
    segment_size: int,
    original: _OriginalCopy | None,
    wrap_sealed_key: WrapKey | None,
    scratch_dir: Path | None,
) -> AttachmentRecord:
    received = 0

    def count(n: int) -> None:
        nonlocal received
        received += n
        if received > max_size:
            raise AttachmentTooLarge(max_size)

    source = aiter(chunks)
    head = bytearray()
    at_end = False
    while len(head) < SNIFF_WINDOW:
        try:
            chunk = await anext(source)
        except StopAsyncIteration:
            at_end = True
            break
        count(len(chunk))
        if original is not None:
            await original.feed(chunk)
        head += chunk
    kind = sniff(bytes(head[:SNIFF_WINDOW]), complete=at_end)

    async def limited() -> AsyncIterator[bytes]:
        if head:
            yield bytes(head)
            head.clear()
        if at_end:
            return
        async for chunk in source:
            count(len(chunk))
            if original is not None:
                await original.feed(chunk)
            yield chunk

    if kind in cleaners.EXTERNAL_KINDS:
        return await _store_cleaned(
            kind,
            limited(),
            store=store,
            wrap_key=wrap_key,
            wrap_sealed_key=wrap_sealed_key,
            scratch_dir=scratch_dir or _default_scratch_dir(),
            segment_size=segment_size,
            received=lambda: received,
        )
    sanitized = sanitize_stream(kind, limited(), whole_file_limit=min(whole_file_limit, max_size))
    try:
        return await _encrypt_into_blob(
            sanitized,
            store=store,
            wrap_key=wrap_key,
            segment_size=segment_size,
            kind=lambda: sanitized.report.kind,
            removed=lambda: tuple(sanitized.report.removed),
            received=lambda: received,
        )
    except WholeFileLimitExceeded:
        raise AttachmentTooLarge(min(whole_file_limit, max_size)) from None


def _default_scratch_dir() -> Path:
    from service.platform.settings import get_settings  # only when the caller did not say

    return get_settings().attachment_scratch_dir


async def _encrypt_into_blob(
    plaintext: AsyncIterable[bytes],
    *,
    store: BlobStore,
    wrap_key: WrapKey,
    segment_size: int,
    kind: Callable[[], FileKind],
    removed: Callable[[], tuple[str, ...]],
    received: Callable[[], int],
    sealed_reason: str | None = None,
) -> AttachmentRecord:
    blob_id = new_blob_id()
    binding = attachment_binding(blob_id)
    file_key = generate_file_key()
    encryptor = StreamEncryptor(file_key, binding, segment_size=segment_size)
    digest = hashlib.sha256()
    size = 0
    writer = await store.open_writer(blob_id)
    async with writer:
        await writer.write(encryptor.header())
        async for piece in plaintext:
            digest.update(piece)
            size += len(piece)
            if ciphertext := encryptor.update(piece):
                await writer.write(ciphertext)
        await writer.write(encryptor.finalize())
        wrapped_key = wrap_key(file_key, binding)
        await writer.commit()
    del file_key
    return AttachmentRecord(
        blob_id=blob_id,
        binding=binding,
        kind=kind(),
        size=size,
        received_size=received(),
        sha256=digest.hexdigest(),
        segments=encryptor.segments,
        removed_metadata=removed(),
        wrapped_key=wrapped_key,
        sealed_reason=sealed_reason,
    )


async def encrypt_bytes_into_blob(
    data: bytes, *, kind: FileKind, store: BlobStore, wrap_key: WrapKey
) -> AttachmentRecord:
    """A file made from a stored, cleaned one (a redacted version): encrypted into a new blob with a new
    file key exactly like an attachment. Not cleaned again: its maker re-encoded it from content only."""

    async def once() -> AsyncIterator[bytes]:
        yield data

    return await _encrypt_into_blob(
        once(),
        store=store,
        wrap_key=wrap_key,
        segment_size=DEFAULT_SEGMENT_SIZE,
        kind=lambda: kind,
        removed=lambda: (),
        received=lambda: len(data),
    )


async def _store_cleaned(
    kind: FileKind,
    chunks: AsyncIterable[bytes],
    *,
    store: BlobStore,
    wrap_key: WrapKey,
    wrap_sealed_key: WrapKey | None,
    scratch_dir: Path,
    segment_size: int,
    received: Callable[[], int],
) -> AttachmentRecord:
    """Spool to a private tmpfs directory, clean there (mat2, ffmpeg, archives member by member), encrypt
    the result; seal the received bytes instead when the file cannot be cleaned with confidence."""
    try:
        async with cleaners.scratch(scratch_dir) as work:
            source = work / f"received{cleaners.suffix(kind)}"
            descriptor = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(descriptor, "wb") as handle:  # noqa: ASYNC230 - tmpfs: memory speed
                async for chunk in chunks:
                    handle.write(chunk)
            report = SanitizeReport(kind=kind)
            try:
                kind, cleaned = await archives.clean(kind, source, work, report.note)
            except cleaners.Uncleanable as exc:
                if wrap_sealed_key is None:
                    raise DisallowedFileType(f"cannot be cleaned: {exc.reason}") from None
                return await _encrypt_into_blob(
                    cleaners.read_file(source),
                    store=store,
                    wrap_key=wrap_sealed_key,
                    segment_size=segment_size,
                    kind=lambda: kind,
                    removed=tuple,
                    received=received,
                    sealed_reason=exc.reason,
                )
            source.unlink()
            return await _encrypt_into_blob(
                cleaners.read_file(cleaned),
                store=store,
                wrap_key=wrap_key,
                segment_size=segment_size,
                kind=lambda: kind,
                removed=lambda: tuple(report.removed),
                received=received,
            )
    except cleaners.Uncleanable as exc:  # no scratch directory: nothing can be cleaned or sealed here
        raise DisallowedFileType(f"cannot be cleaned: {exc.reason}") from None
