"""ZIP and TAR archives cleaned member by member, and the one cleaning dispatch for spooled uploads
(:func:`clean`).

Choices (issue 16):
- Every member is sniffed from its own bytes and cleaned as if it had been uploaded alone: by the external
  cleaners (``cleaners.clean``: office documents, PDF, HEIC, video, TIFF, SVG) or the in-process filters
  (``sanitize``: JPEG, PNG, audio, text); an archive inside the archive recurses. TAR: uncompressed only
  (a ``.tar.gz`` is refused at sniffing); links, devices and other non-files are members that cannot be
  cleaned (a link may point outside the archive).
- A member that cannot be cleaned (a refused kind, an uncleanable file, an encrypted or damaged member)
  seals the WHOLE archive (``Uncleanable("archive-member")``), as any uncleanable upload is sealed. Not
  dropped: an archive served with silent gaps would mislead the investigator, and the sealed received
  archive keeps every member for a custody release.
- Limits against zip bombs, over the archive and everything nested in it: depth (an archive inside an
  archive, no deeper: :data:`MAX_DEPTH`), member count (:data:`MAX_MEMBERS`), total expanded size
  (:data:`MAX_EXPANDED`), the expansion ratio of each archive (``ooxml.guarded_open``) and time (one
  cleaner's timeout for the whole archive: ``Uncleanable("timeout")``). Declared sizes are
  checked before anything is read, and the bytes actually inflated may not exceed what was declared. Over a
  limit: ``Uncleanable("archive-limits")``, so the archive is sealed (its compressed bytes), never expanded.
- Member names can identify (a person's name, a user path, a phone's photo numbering, the folder layout of
  someone's disk): the cleaned archive names its members ``1.jpg``, ``2.docx``… in archive order, with the
  extension of the kind found in the bytes; no folders, no archive or member comments, no extra fields, a
  fixed timestamp (ZIP 1980-01-01, TAR 1970-01-01), and in a TAR no owner names or ids.
- Members' plaintext lives only in the upload's scratch directory (tmpfs, 0700), removed with it; each
  member's own directory is removed as soon as it is packed.
- ``note`` receives ``zip:members`` and the members' own fixed labels, never a name from the archive.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from service.attachments import cleaners
from service.attachments.cleaners import Uncleanable, read_file
from service.attachments.ooxml import NotOfficeDocument, guarded_open
from service.attachments.sanitize import WholeFileLimitExceeded, sanitize_stream
from service.attachments.sniff import EXTENSIONS, SNIFF_WINDOW, DisallowedFileType, FileKind, sniff

MAX_DEPTH = 2
MAX_MEMBERS = 1000
MAX_EXPANDED = 256 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)

Note = Callable[[str, int], None]


@dataclass
class _Budget:
    """What the archive and everything nested in it may still expand to, and until when it may be worked
    on: the whole archive gets one cleaner's timeout, not one per member."""

    members: int = MAX_MEMBERS
    size: int = MAX_EXPANDED
    deadline: float = field(default_factory=lambda: time.monotonic() + cleaners.CLEAN_TIMEOUT_SECONDS)

    def take(self, size: int) -> None:
        self.members -= 1
        self.size -= size
        if self.members < 0 or self.size < 0:
            raise Uncleanable("archive-limits")

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise Uncleanable("timeout")


async def clean(kind: FileKind, source: Path, work: Path, note: Note) -> tuple[FileKind, Path]:
    """``cleaners.clean`` for every spooled kind, ZIP and TAR archives included (recursively)."""
    if kind in cleaners.ARCHIVE_KINDS:
        return kind, await _ARCHIVES[kind](source, work, note, depth=1, budget=_Budget())
    return await cleaners.clean(kind, source, work, note)


async def _clean_zip(source: Path, work: Path, note: Note, *, depth: int, budget: _Budget) -> Path:
    if depth > MAX_DEPTH:
        raise Uncleanable("archive-limits")
    try:
        archive = guarded_open(source)
    except NotOfficeDocument:  # unreadable, or over the entry, size or ratio limits
        raise Uncleanable("archive-limits") from None
    folder = Path(tempfile.mkdtemp(prefix="zip-", dir=work))  # 0700
    target = folder / "cleaned.zip"
    with archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        entries = [entry for entry in archive.infolist() if not entry.is_dir()]
        for entry in entries:
            if entry.flag_bits & 0x1:  # encrypted: its content cannot be inspected
                raise Uncleanable("archive-member")
            budget.take(entry.file_size)
        for number, entry in enumerate(entries, start=1):
            budget.check_time()
            member = folder / str(number)
            member.mkdir(mode=0o700)
            received = member / "received"
            await asyncio.to_thread(_extract, archive, entry, received)
            kind, cleaned = await _clean_member(received, member, note, depth=depth, budget=budget)
            await asyncio.to_thread(_pack, out, cleaned, f"{number}.{EXTENSIONS[kind]}")
            shutil.rmtree(member)
    note("zip:members", len(entries))
    return target


async def _clean_tar(source: Path, work: Path, note: Note, *, depth: int, budget: _Budget) -> Path:
    if depth > MAX_DEPTH:
        raise Uncleanable("archive-limits")
    try:
        archive = tarfile.open(source, "r:")  # noqa: SIM115 - closed by the ``with`` below
        entries = [entry for entry in archive.getmembers() if not entry.isdir()]
    except (tarfile.TarError, OSError, EOFError, ValueError):
        raise Uncleanable("archive-limits") from None
    folder = Path(tempfile.mkdtemp(prefix="tar-", dir=work))  # 0700
    target = folder / "cleaned.tar"
    with archive, tarfile.open(target, "w", format=tarfile.USTAR_FORMAT) as out:
        for entry in entries:
            if not entry.isfile():  # a link (it may point outside), a device, a FIFO: nothing to clean
                raise Uncleanable("archive-member")
            budget.take(entry.size)
        for number, entry in enumerate(entries, start=1):
            budget.check_time()
            member = folder / str(number)
            member.mkdir(mode=0o700)
            received = member / "received"
            await asyncio.to_thread(_extract_tar, archive, entry, received)
            kind, cleaned = await _clean_member(received, member, note, depth=depth, budget=budget)
            await asyncio.to_thread(_pack_tar, out, cleaned, f"{number}.{EXTENSIONS[kind]}")
            shutil.rmtree(member)
    note("tar:members", len(entries))
    return target


def _extract_tar(archive: tarfile.TarFile, entry: tarfile.TarInfo, target: Path) -> None:
    try:
        source = archive.extractfile(entry)
        if source is None:
            raise Uncleanable("archive-member")
        with source, open(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
            shutil.copyfileobj(source, out, _COPY_CHUNK)
    except (tarfile.TarError, OSError, EOFError, ValueError):
        raise Uncleanable("archive-limits") from None  # truncated or damaged
    if target.stat().st_size != entry.size:
        raise Uncleanable("archive-limits")


def _pack_tar(out: tarfile.TarFile, cleaned: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.size = cleaned.stat().st_size
    info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, 0, "", ""
    with open(cleaned, "rb") as source:
        out.addfile(info, source)


def _extract(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path) -> None:
    """The member's bytes into ``target`` (0600), never more than its header declared."""
    written = 0
    try:
        with (
            archive.open(entry) as source,
            open(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out,
        ):
            while chunk := source.read(_COPY_CHUNK):
                written += len(chunk)
                if written > entry.file_size:
                    raise Uncleanable("archive-limits")
                out.write(chunk)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError, ValueError):
        raise Uncleanable("archive-limits") from None  # damaged, or a compression we cannot read


def _pack(out: zipfile.ZipFile, cleaned: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with open(cleaned, "rb") as source, out.open(info, "w") as target:
        shutil.copyfileobj(source, target, _COPY_CHUNK)


async def _clean_member(
    received: Path, work: Path, note: Note, *, depth: int, budget: _Budget
) -> tuple[FileKind, Path]:
    with open(received, "rb") as handle:  # noqa: ASYNC230 - tmpfs: memory speed
        head = handle.read(SNIFF_WINDOW + 1)
    try:
        kind = sniff(head[:SNIFF_WINDOW], complete=len(head) <= SNIFF_WINDOW)
    except DisallowedFileType:
        raise Uncleanable("archive-member") from None
    # mat2 picks its parser by the suffix.
    suffix = cleaners.suffix(kind) if kind in cleaners.EXTERNAL_KINDS else ""
    source = received.rename(work / f"received{suffix}")  # noqa: ASYNC240 - a rename on tmpfs
    try:
        if kind in cleaners.ARCHIVE_KINDS:
            return kind, await _ARCHIVES[kind](source, work, note, depth=depth + 1, budget=budget)
        if kind in cleaners.EXTERNAL_KINDS:
            return await cleaners.clean(kind, source, work, note)
        return await _filter(kind, source, work, note)
    except (DisallowedFileType, WholeFileLimitExceeded):
        raise Uncleanable("archive-member") from None
    except Uncleanable as exc:
        if exc.reason in ("archive-limits", "cleaner-missing", "timeout"):
            raise
        raise Uncleanable("archive-member") from None


async def _filter(kind: FileKind, source: Path, work: Path, note: Note) -> tuple[FileKind, Path]:
    """The in-process filters (JPEG, PNG, GIF, WebP, audio, text), from and to a scratch file."""
    stream = sanitize_stream(kind, read_file(source))
    target = work / "cleaned"
    with open(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:  # noqa: ASYNC230 - tmpfs
        async for piece in stream:
            out.write(piece)
    for label, count in stream.report.counts.items():
        note(label, count)
    return stream.report.kind, target


_ARCHIVES = {FileKind.ZIP: _clean_zip, FileKind.TAR: _clean_tar}
