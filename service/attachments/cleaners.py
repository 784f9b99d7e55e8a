"""External cleaners: Debian's ``mat2`` (office documents, PDF, HEIC) and ``ffmpeg`` (video), run as
commands beside our virtualenv on a file in a private scratch directory.

Why commands: mat2's PyPI release builds PyGObject from source; Debian's package brings GObject, Poppler,
cairo and exiftool with it. Both tools need a file on disk (a PDF's cross-reference table and a ZIP's or
MP4's index sit at the end), so:

Invariants:
- The plaintext copy lives only in :func:`scratch`'s directory: a fresh ``0700`` directory under
  ``Settings.attachment_scratch_dir`` (a tmpfs, ``/dev/shm`` by default, so it never reaches a disk), which
  is removed when the upload's cleaning ends, whatever the outcome. The tools are run with ``TMPDIR`` and
  ``HOME`` pointing into it (mat2 unpacks archives into ``TMPDIR``), a scrubbed environment and a timeout.
- Nothing the tools print is logged or stored: their messages name parts and fields of the file.
- A kind whose cleaner is missing, fails, times out or leaves something the checks below find raises
  :class:`Uncleanable` with a reason code; the pipeline then seals the received file under the identity
  key (or refuses it) — it is never passed through.
- ``report.note`` receives fixed labels of this module only, never a string from the file.

Choices, per kind:
- OOXML (DOCX/XLSX/PPTX): our pre-pass (:mod:`service.attachments.ooxml`) removes what mat2 0.13 refuses
  or leaves (comment parts, people and person parts, embedded files, thumbnails, custom XML, tracked-change
  and formatting-change authors in every part), then mat2 cleans the rest recursively (rsids, core/app
  properties, images inside the document through its image parsers) and leaves out parts it has no
  parser for (``--unknown-members omit``: never kept as they are). A check of the result seals the file
  if any part of a removed family or any person-naming attribute would still be there.
- ODT/ODS/ODP: our pre-pass (:mod:`service.attachments.odf`: comments with their authors, RDF metadata,
  thumbnails, settings), then mat2 (``meta.xml``, tracked changes, pictures inside), checked the same way.
- PDF: mat2 ``--lightweight``: Poppler draws every page onto a new cairo PDF, so no original object
  survives (annotations with their authors, XMP on any object, embedded files and JavaScript are gone:
  ``test_pdf_annotation_authors_xmp_embedded_files_javascript_removed``), while text stays text that an
  investigator can select and search (``test_pdf_text_stays_selectable``). mat2's default would
  rasterise each page into an image: safer against hidden text, but the investigator could no longer
  search or copy it. Hidden or white text therefore stays in the file: it is
  content, not metadata, and the investigator should see it.
- HEIC: mat2 (exiftool removes every metadata item, keeps the coded image untouched). Pillow-heif would
  decode and re-encode the picture (lossy, and a large native wheel); ffmpeg 5.1 cannot read HEIC.
- MP4/MOV/3GP: ffmpeg copies only the video and audio streams (no data, subtitle, timed-metadata or cover
  streams: iPhones keep location in those), drops global and per-stream metadata and chapters, writes in
  bit-exact mode (no encoder tag, zero creation times); the codecs are copied, not re-encoded.
- ODG (drawings): as ODT (the same pre-pass and check; mat2 has an ODG parser).
- TIFF: mat2 redraws the picture through GdkPixbuf into a new file (no IFD but the image's own survives:
  no EXIF, GPS, maker notes or serial numbers). A TIFF GdkPixbuf cannot read is sealed.
- SVG: mat2 redraws it through librsvg onto a new cairo SVG: paths and colours only, no metadata, no
  ``<script>``, no foreign elements or links. Text becomes outlines (still readable, no longer selectable).
  An SVG librsvg cannot draw (mat2's ``weird.svg``) is sealed.
- ZIP, TAR: not here; :mod:`service.attachments.archives` unpacks them and sends every member through this
  dispatch (or the in-process filters), under limits against zip bombs.
- EPUB, compressed TAR, ODF formulas: refused at sniffing. mat2 would clean an EPUB's package metadata,
  but its chapters are HTML (scripts, remote references, file names that carry source paths) shown by a reader
  application: not a kind a reporter needs badly enough to take that risk.
- Legacy DOC/XLS: no cleaner this service trusts (tracked changes and authors sit inside the binary
  document stream), so they are sealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

from service.attachments import odf, ooxml
from service.attachments.sniff import DisallowedFileType, FileKind

CLEAN_TIMEOUT_SECONDS = 300
MAT2 = "mat2"
FFMPEG = "ffmpeg"

OOXML_KINDS = frozenset({FileKind.DOCX, FileKind.XLSX, FileKind.PPTX})
ODF_KINDS = frozenset({FileKind.ODT, FileKind.ODS, FileKind.ODP, FileKind.ODG})
REDRAWN_KINDS = frozenset({FileKind.TIFF, FileKind.SVG})  # mat2 draws a new file from the picture
ARCHIVE_KINDS = frozenset({FileKind.ZIP, FileKind.TAR})  # cleaned member by member in ``archives``
VIDEO_KINDS = frozenset({FileKind.MP4, FileKind.MOV, FileKind.THREE_GP})
SEALED_KINDS = frozenset({FileKind.LEGACY_OFFICE})  # accepted, never cleaned: always sealed
EXTERNAL_KINDS = (
    OOXML_KINDS | ODF_KINDS | VIDEO_KINDS | SEALED_KINDS | REDRAWN_KINDS | ARCHIVE_KINDS
    | {FileKind.PDF, FileKind.HEIC}
)  # fmt: skip

_SUFFIX = {
    FileKind.DOCX: ".docx", FileKind.XLSX: ".xlsx", FileKind.PPTX: ".pptx", FileKind.PDF: ".pdf",
    FileKind.HEIC: ".heic", FileKind.MP4: ".mp4", FileKind.MOV: ".mov", FileKind.THREE_GP: ".3gp",
    FileKind.LEGACY_OFFICE: ".bin", FileKind.ODT: ".odt", FileKind.ODS: ".ods", FileKind.ODP: ".odp",
    FileKind.ODG: ".odg", FileKind.TIFF: ".tiff", FileKind.SVG: ".svg", FileKind.ZIP: ".zip",
    FileKind.TAR: ".tar",
}  # fmt: skip
_OOXML_KIND = {"docx": FileKind.DOCX, "xlsx": FileKind.XLSX, "pptx": FileKind.PPTX}
_ODF_KIND = {"odt": FileKind.ODT, "ods": FileKind.ODS, "odp": FileKind.ODP, "odg": FileKind.ODG}
_FFMPEG_FORMAT = {FileKind.MP4: "mp4", FileKind.MOV: "mov", FileKind.THREE_GP: "3gp"}


class Uncleanable(Exception):
    """The file could not be cleaned with confidence; ``reason`` is a fixed code staff are shown."""

    # code -> what staff read (Chinese first; the API carries the code)
    REASONS = {
        "cleaner-missing": "本机未安装清理工具，无法确认已去除元数据",
        "cleaner-failed": "清理工具无法处理此文件（可能已损坏或含不支持的部分）",
        "no-cleaner-for-kind": "此类文件（旧版 Office）无可信的元数据清理工具",
        "check-failed": "清理后检查仍发现可识别身份的部分",
        "timeout": "清理超时",
        "archive-limits": "压缩包超出解压限制（层数、文件数或解压后大小）或无法读取",
        "archive-member": "压缩包内有无法清理或不允许的文件",
    }

    def __init__(self, reason: str) -> None:
        assert reason in self.REASONS
        super().__init__(reason)
        self.reason = reason


def suffix(kind: FileKind) -> str:
    return _SUFFIX[kind]


@contextlib.asynccontextmanager
async def scratch(root: Path) -> AsyncIterator[Path]:
    """A fresh private (0700) directory under ``root`` for one upload; removed on exit, even on failure."""
    if not root.is_dir():  # noqa: ASYNC240 - one stat of a local directory
        raise Uncleanable("cleaner-missing")
    path = Path(tempfile.mkdtemp(prefix="tipline-clean-", dir=root))  # mkdtemp creates it 0700
    os.chmod(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def clean(kind: FileKind, source: Path, work: Path, note) -> tuple[FileKind, Path]:  # type: ignore[no-untyped-def]
    """Clean ``source`` (in ``work``); returns the resolved kind and the cleaned file's path.
    ``note(label, count)`` records what was removed. Raises :class:`Uncleanable` (seal it), or
    ``DisallowedFileType`` when the file is not what it was sniffed as (refuse it)."""
    if kind in SEALED_KINDS:
        raise Uncleanable("no-cleaner-for-kind")
    if kind in VIDEO_KINDS:
        return kind, await _ffmpeg(kind, source, work, note)
    if kind in OOXML_KINDS:
        prepared = work / "prepared.docx"  # mat2 picks its parser by suffix; one parser for all three
        try:
            kind = _OOXML_KIND[await asyncio.to_thread(ooxml.prepare, source, prepared, note)]
        except ooxml.NotOfficeDocument:
            raise DisallowedFileType("archive is not a readable office document") from None
        # Parts mat2 has no parser for (a script or program stored in the package) are left out, not kept.
        cleaned = await _mat2(prepared, work, lightweight=False, unknown_members="omit")
        if not await asyncio.to_thread(ooxml.check, cleaned):
            raise Uncleanable("check-failed")
        note("office:parts-dropped-by-mat2", await asyncio.to_thread(ooxml.dropped_count, prepared, cleaned))
        note("office:metadata-parts", 1)
        return kind, cleaned
    if kind in ODF_KINDS:
        try:
            kind = _ODF_KIND[await asyncio.to_thread(odf.prepare, source, work / "prepared.odf", note)]
        except odf.NotOfficeDocument:
            raise DisallowedFileType("archive is not a readable OpenDocument file") from None
        prepared = (work / "prepared.odf").rename(work / f"prepared{_SUFFIX[kind]}")  # mat2 reads the suffix
        cleaned = await _mat2(prepared, work, lightweight=False, unknown_members="omit")
        if not await asyncio.to_thread(odf.check, cleaned):
            raise Uncleanable("check-failed")
        note("office:metadata-parts", 1)
        return kind, cleaned
    if kind is FileKind.PDF:
        cleaned = await _mat2(source, work, lightweight=True)
        note("pdf:redrawn", 1)
        return kind, cleaned
    if kind is FileKind.HEIC:
        cleaned = await _mat2(source, work, lightweight=False)
        note("heic:metadata", 1)
        return kind, cleaned
    if kind in REDRAWN_KINDS:
        cleaned = await _mat2(source, work, lightweight=False)
        note(f"{_SUFFIX[kind][1:]}:redrawn", 1)
        return kind, cleaned
    raise Uncleanable("no-cleaner-for-kind")


_READ_CHUNK = 256 * 1024


async def read_file(path: Path) -> AsyncIterator[bytes]:
    """A scratch file's bytes in chunks (blocking reads of a tmpfs file: memory speed, no thread needed)."""
    with open(path, "rb") as handle:  # noqa: ASYNC230 - a tmpfs file: memory speed
        while chunk := handle.read(_READ_CHUNK):
            yield chunk


def _environment(work: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TMPDIR": str(work),
        "HOME": str(work),
        "LANG": "C.UTF-8",
    }


# At most one cleaner per core at a time in each event loop: a burst of uploads queues here instead of
# starting dozens of mat2 interpreters at once (each is CPU-bound for its fraction of a second).
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _SLOTS:
        _SLOTS[loop] = asyncio.Semaphore(max(1, os.cpu_count() or 1))
    return _SLOTS[loop]


async def _run(argv: list[str], work: Path) -> int:
    """Run a cleaner; its output is discarded unread (it names the file's parts and fields)."""
    async with _slots():
        return await _run_now(argv, work)


async def _run_now(argv: list[str], work: Path) -> int:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=work,
            env=_environment(work),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        raise Uncleanable("cleaner-missing") from None
    try:
        return await asyncio.wait_for(process.wait(), CLEAN_TIMEOUT_SECONDS)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise Uncleanable("timeout") from None


async def _mat2(source: Path, work: Path, *, lightweight: bool, unknown_members: str = "abort") -> Path:
    command = shutil.which(MAT2)
    if command is None:
        raise Uncleanable("cleaner-missing")
    argv = [command, "--unknown-members", unknown_members, *(["--lightweight"] if lightweight else [])]
    argv += ["--", str(source)]
    cleaned = source.with_name(f"{source.stem}.cleaned{source.suffix}")
    if await _run(argv, work) != 0 or not cleaned.is_file():
        raise Uncleanable("cleaner-failed")
    return cleaned


async def _ffmpeg(kind: FileKind, source: Path, work: Path, note) -> Path:  # type: ignore[no-untyped-def]
    command = shutil.which(FFMPEG)
    if command is None:
        raise Uncleanable("cleaner-missing")
    cleaned = work / f"cleaned{_SUFFIX[kind]}"
    argv = [
        command, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(source),
        # Video and audio only (no data, subtitle, timed-metadata or attached-picture streams).
        "-map", "0:V?", "-map", "0:a?", "-c", "copy",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-f", _FFMPEG_FORMAT[kind], str(cleaned),
    ]  # fmt: skip
    if await _run(argv, work) != 0 or not cleaned.is_file() or cleaned.stat().st_size == 0:
        raise Uncleanable("cleaner-failed")
    note("video:metadata", 1)
    return cleaned
