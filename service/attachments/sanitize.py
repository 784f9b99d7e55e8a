"""Removal of identifying metadata from uploads before they are encrypted and stored.

Three ways of working, chosen per kind:

- Streaming filters (JPEG, PNG, WAV, WebP, MP3/AAC, text, AMR) parse the container's own framing
  (JPEG marker segments, PNG chunks, RIFF chunks, ID3 tags) and hold at most one small header, one
  metadata identifier or a bounded tail in memory, so an image or recording of any size streams through.
  They keep an allow-list of structural parts and drop the rest, so unknown metadata blocks go too.
  We keep them rather than mat2's image cleaning because mat2 re-encodes JPEG pixels through GdkPixbuf
  (lossy for evidence) and needs the file on disk.
- Small whole-file processors (GIF, M4A, Ogg) need random access (mutagen rewrites MP4/Ogg tag boxes in
  place). These are buffered in memory up to an explicit cap (``whole_file_limit``); above it
  :class:`WholeFileLimitExceeded` is raised.
- External cleaners (office documents, PDF, HEIC, video; legacy Office sealed): see ``cleaners``; the
  pipeline spools those to a private tmpfs directory.

The report counts *which kinds* of fields or blocks were removed under fixed labels (e.g.
``"jpeg:APP1/Exif=1"``, ``"png:ancillary-chunk=2"``), never a name or value from the file.
Files that do not parse as the sniffed kind are rejected with :class:`MalformedFile`.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import struct
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field

from service.attachments.sniff import DisallowedFileType, FileKind

DEFAULT_WHOLE_FILE_LIMIT = 50 * 1024 * 1024
OUTPUT_CHUNK_SIZE = 64 * 1024


class MalformedFile(DisallowedFileType):
    """The bytes do not parse as the sniffed kind."""


class WholeFileLimitExceeded(Exception):
    """A kind that must be processed whole is larger than the in-memory cap."""


@dataclass
class SanitizeReport:
    """What was removed, as fixed labels of this package with counts (``"jpeg:APP1/Exif=1"``): never a
    string taken from the file (a custom property's name or a chunk's id can identify its source)."""

    kind: FileKind
    counts: Counter[str] = field(default_factory=Counter)
    complete: bool = False

    def note(self, label: str, count: int = 1) -> None:
        if count:
            self.counts[label] += count

    @property
    def removed(self) -> list[str]:
        return [f"{label}={count}" for label, count in self.counts.items()]


# --------------------------------------------------------------------------------------------------------
# Streaming filters: feed(data) -> bytes, close() -> bytes


class _JpegFilter:
    """Drops APPn segments other than JFIF/JFXX (APP0), ICC (APP2) and Adobe (APP14), COM segments, and
    anything after EOI (camera trailers, extra MPF images). Entropy-coded data is copied through."""

    _KEEP_APP = {0xE0: (b"JFIF\x00", b"JFXX\x00"), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}
    _STANDALONE = {0x01, *range(0xD0, 0xD8)}

    def __init__(self, report: SanitizeReport) -> None:
        self._report = report
        self._buf = bytearray()
        self._state = "soi"
        self._count = 0  # bytes left to copy or skip in the current segment

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        while pos < len(buf):
            state = self._state
            if state == "soi":
                if len(buf) < 2:
                    break
                if buf[:2] != b"\xff\xd8":
                    raise MalformedFile("not a JPEG stream")
                out += b"\xff\xd8"
                pos = 2
                self._state = "marker"
            elif state in ("copy", "skip"):
                take = min(self._count, len(buf) - pos)
                if state == "copy":
                    out += buf[pos : pos + take]
                pos += take
                self._count -= take
                if self._count == 0:
                    self._state = "scan" if self._after_sos else "marker"
            elif state == "scan":
                j = buf.find(b"\xff", pos)
                if j < 0:
                    out += buf[pos:]
                    pos = len(buf)
                    break
                if j + 1 >= len(buf):
                    out += buf[pos:j]
                    pos = j
                    break
                nxt = buf[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    out += buf[pos : j + 2]
                    pos = j + 2
                else:
                    out += buf[pos:j]
                    pos = j
                    self._state = "marker"
            elif state == "marker":
                if buf[pos] != 0xFF:
                    raise MalformedFile("bad JPEG marker")
                i = pos
                while i < len(buf) and buf[i] == 0xFF:
                    i += 1
                if i >= len(buf):
                    pos = i - 1  # keep one 0xFF until the marker byte arrives
                    break
                marker = buf[i]
                if marker == 0xD9:
                    out += b"\xff\xd9"
                    pos = i + 1
                    self._state = "trailer"
                elif marker in self._STANDALONE:
                    out += bytes((0xFF, marker))
                    pos = i + 1
                elif marker in (0x00, 0xD8):
                    raise MalformedFile("bad JPEG marker")
                else:
                    if len(buf) < i + 3:
                        pos = i - 1 if i - 1 >= pos else pos
                        break
                    length = (buf[i + 1] << 8) | buf[i + 2]
                    if length < 2:
                        raise MalformedFile("bad JPEG segment length")
                    ident_len = min(length - 2, 16)
                    if len(buf) < i + 3 + ident_len:
                        pos = i - 1 if i - 1 >= pos else pos
                        break
                    ident = bytes(buf[i + 3 : i + 3 + ident_len])
                    keep = self._keep(marker, ident)
                    self._after_sos = marker == 0xDA
                    if keep:
                        out += bytes((0xFF, marker)) + buf[i + 1 : i + 3]
                        self._state = "copy"
                    else:
                        self._state = "skip"
                    self._count = length - 2
                    pos = i + 3
                    if self._count == 0:
                        self._state = "scan" if self._after_sos else "marker"
            else:  # trailer
                self._report.note("jpeg:trailing-data")
                pos = len(buf)
        del buf[:pos]
        return bytes(out)

    _after_sos = False

    def _keep(self, marker: int, ident: bytes) -> bool:
        if marker == 0xFE:
            self._report.note("jpeg:COM")
            return False
        if 0xE0 <= marker <= 0xEF:
            if ident.startswith(self._KEEP_APP.get(marker, ())):
                return True
            self._report.note(f"jpeg:APP{marker - 0xE0}{_jpeg_app_name(ident)}")
            return False
        return True

    def close(self) -> bytes:
        if self._state not in ("trailer",):
            raise MalformedFile("JPEG stream ended before its end marker")
        return b""


def _jpeg_app_name(ident: bytes) -> str:
    for prefix, name in (
        (b"Exif\x00", "/Exif"),
        (b"http://ns.adobe.com/xap", "/XMP"),
        (b"Photoshop 3.0", "/IPTC"),
        (b"MPF\x00", "/MPF"),
    ):
        if ident.startswith(prefix[:16]):
            return name
    return ""


class _PngFilter:
    """Keeps critical chunks and an allow-list of rendering chunks; drops text, time, EXIF and any other
    ancillary chunk (e.g. tEXt, iTXt, zTXt, eXIf, tIME, C2PA); drops anything after IEND."""

    _SAFE_ANCILLARY = {
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs", b"sPLT", b"hIST",
        b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCv", b"cLLi",
    }  # fmt: skip
    _SIGNATURE = b"\x89PNG\r\n\x1a\n"

    def __init__(self, report: SanitizeReport) -> None:
        self._report = report
        self._buf = bytearray()
        self._state = "sig"
        self._count = 0

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        while pos < len(buf):
            if self._state == "sig":
                if len(buf) < 8:
                    break
                if buf[:8] != self._SIGNATURE:
                    raise MalformedFile("not a PNG stream")
                out += self._SIGNATURE
                pos = 8
                self._state = "header"
            elif self._state == "header":
                if len(buf) - pos < 8:
                    break
                length, ctype = struct.unpack_from(">I4s", buf, pos)
                if length > 0x7FFFFFFF or not ctype.isalpha():
                    raise MalformedFile("bad PNG chunk")
                keep = ctype[0:1].isupper() or ctype in self._SAFE_ANCILLARY
                if keep:
                    out += buf[pos : pos + 8]
                else:
                    self._report.note("png:ancillary-chunk")
                self._count = length + 4  # data and CRC
                self._state = "copy" if keep else "skip"
                self._iend = ctype == b"IEND"
                pos += 8
            elif self._state in ("copy", "skip"):
                take = min(self._count, len(buf) - pos)
                if self._state == "copy":
                    out += buf[pos : pos + take]
                pos += take
                self._count -= take
                if self._count == 0:
                    self._state = "trailer" if self._iend else "header"
            else:
                self._report.note("png:trailing-data")
                pos = len(buf)
        del buf[:pos]
        return bytes(out)

    _iend = False

    def close(self) -> bytes:
        if self._state != "trailer":
            raise MalformedFile("PNG stream ended before IEND")
        return b""


_RIFF_LABELS = {
    b"LIST": "LIST",
    b"EXIF": "EXIF",
    b"XMP ": "XMP",
    b"id3 ": "id3",
    b"ID3 ": "id3",
    b"bext": "bext",
}


class _RiffFilter:
    """WAV and WebP: chunks outside the allow-list are overwritten in place by a JUNK chunk of the same
    size (zero-filled), so the RIFF size in the already-sent header stays right; WebP's VP8X flags for
    EXIF and XMP are cleared. Bytes past the RIFF size are dropped."""

    _KEEP = {
        FileKind.WAV: {b"fmt ", b"data", b"fact", b"cue ", b"smpl", b"inst", b"JUNK", b"PAD "},
        FileKind.WEBP: {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP", b"JUNK"},
    }

    def __init__(self, report: SanitizeReport, kind: FileKind) -> None:
        self._report = report
        self._keep = self._KEEP[kind]
        self._prefix = kind.name.lower()
        self._buf = bytearray()
        self._state = "riff"
        self._count = 0
        self._remaining = 0  # bytes of the RIFF body still expected

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        while pos < len(buf):
            if self._state == "riff":
                if len(buf) < 12:
                    break
                out += buf[:12]
                self._remaining = struct.unpack_from("<I", buf, 4)[0] - 4
                pos = 12
                self._state = "header"
            elif self._state == "header":
                if self._remaining <= 0:
                    self._state = "trailer"
                    continue
                if len(buf) - pos < 8:
                    break
                cid, size = struct.unpack_from("<4sI", buf, pos)
                padded = size + (size & 1)
                if cid == b"VP8X":
                    if len(buf) - pos < 8 + padded:
                        break
                    chunk = bytearray(buf[pos : pos + 8 + padded])
                    if chunk[8] & 0x0C:
                        chunk[8] &= ~0x0C & 0xFF
                    out += chunk
                    pos += 8 + padded
                    self._remaining -= 8 + padded
                    continue
                if cid in self._keep:
                    out += buf[pos : pos + 8]
                    self._state = "copy"
                else:
                    self._report.note(f"{self._prefix}:{_RIFF_LABELS.get(cid, 'chunk')}")
                    out += b"JUNK" + buf[pos + 4 : pos + 8]
                    self._state = "zero"
                self._count = padded
                self._remaining -= 8 + padded
                pos += 8
            elif self._state in ("copy", "zero"):
                take = min(self._count, len(buf) - pos)
                out += buf[pos : pos + take] if self._state == "copy" else bytes(take)
                pos += take
                self._count -= take
                if self._count == 0:
                    self._state = "header"
            else:
                self._report.note(f"{self._prefix}:trailing-data")
                pos = len(buf)
        del buf[:pos]
        return bytes(out)

    def close(self) -> bytes:
        if self._state not in ("header", "trailer") or self._remaining > 0:
            raise MalformedFile("RIFF stream ended early")
        return b""


class _Id3Filter:
    """MP3 and ADTS AAC: drops leading ID3v2 tags, and at the end an ID3v1(+extended) tag and an APEv2
    tag. Holds back a bounded tail to find the trailing tags; a trailing tag larger than that is refused
    rather than kept."""

    TAIL = 256 * 1024

    def __init__(self, report: SanitizeReport) -> None:
        self._report = report
        self._buf = bytearray()
        self._state = "head"
        self._skip = 0

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        if self._state == "head":
            while True:
                if self._skip:
                    take = min(self._skip, len(buf))
                    del buf[:take]
                    self._skip -= take
                    if self._skip:
                        return b""
                if len(buf) < 10:
                    return b""
                if buf[:3] != b"ID3":
                    self._state = "body"
                    break
                raw = buf[6:10]
                if any(b & 0x80 for b in raw):
                    raise MalformedFile("bad ID3v2 size")
                size = (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]
                self._skip = 10 + size + (10 if buf[5] & 0x10 else 0)
                self._report.note("id3v2")
        if len(buf) > 2 * self.TAIL:
            cut = len(buf) - self.TAIL
            out = bytes(buf[:cut])
            del buf[:cut]
            return out
        return b""

    def close(self) -> bytes:
        if self._state == "head" and (self._skip or self._buf[:3] == b"ID3"):
            raise MalformedFile("audio ended inside its tag")
        tail = self._buf
        if tail[-128:-125] == b"TAG" and len(tail) >= 128:
            del tail[-128:]
            self._report.note("id3v1")
            if len(tail) >= 227 and tail[-227:-223] == b"TAG+":
                del tail[-227:]
                self._report.note("id3v1-extended")
        if len(tail) >= 32 and tail[-32:-24] == b"APETAGEX":
            size, _count, flags = struct.unpack_from("<III", tail, len(tail) - 20)
            total = size + (32 if flags & 0x80000000 else 0)
            if total > len(tail):
                raise MalformedFile("trailing audio tag too large")
            del tail[-total:]
            self._report.note("apev2")
        out = bytes(tail)
        tail.clear()
        return out


class _TextFilter:
    """Plain text carries no metadata; this only checks the whole stream stays decodable, NUL-free text."""

    def __init__(self, report: SanitizeReport, encoding: str) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)()

    def feed(self, data: bytes) -> bytes:
        if b"\x00" in data:
            raise MalformedFile("binary content in text")
        try:
            self._decoder.decode(data)
        except UnicodeDecodeError:
            raise MalformedFile("undecodable text") from None
        return data

    def close(self) -> bytes:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise MalformedFile("undecodable text") from None
        return b""


class _PassFilter:
    """AMR: raw speech frames, no metadata container."""

    def __init__(self, report: SanitizeReport) -> None:
        pass

    def feed(self, data: bytes) -> bytes:
        return data

    def close(self) -> bytes:
        return b""


_STREAMING: dict[FileKind, Callable[[SanitizeReport], object]] = {
    FileKind.JPEG: _JpegFilter,
    FileKind.PNG: _PngFilter,
    FileKind.WAV: lambda r: _RiffFilter(r, FileKind.WAV),
    FileKind.WEBP: lambda r: _RiffFilter(r, FileKind.WEBP),
    FileKind.MP3: _Id3Filter,
    FileKind.AAC: _Id3Filter,
    FileKind.TEXT_UTF8: lambda r: _TextFilter(r, "utf-8"),
    FileKind.TEXT_GB18030: lambda r: _TextFilter(r, "gb18030"),
    FileKind.AMR: _PassFilter,
}


# --------------------------------------------------------------------------------------------------------
# Whole-file processors: (data, report) -> data


def _sanitize_gif(data: bytes, report: SanitizeReport) -> bytes:
    """Drops comment extensions and application extensions other than animation loops (NETSCAPE2.0,
    ANIMEXTS1.0), e.g. XMP; drops anything after the trailer."""
    if len(data) < 13:
        raise MalformedFile("not a GIF")
    flags = data[10]
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    out = bytearray(data[:pos])

    def sub_blocks_end(p: int) -> int:
        while True:
            if p >= len(data):
                raise MalformedFile("GIF ended inside a block")
            n = data[p]
            p += 1 + n
            if n == 0:
                return p

    while True:
        if pos >= len(data):
            raise MalformedFile("GIF ended before its trailer")
        intro = data[pos]
        if intro == 0x3B:
            out.append(0x3B)
            if pos + 1 < len(data):
                report.note("gif:trailing-data")
            return bytes(out)
        if intro == 0x2C:
            if pos + 10 > len(data):
                raise MalformedFile("GIF ended inside an image")
            lflags = data[pos + 9]
            start = pos
            pos += 10 + (3 * (2 << (lflags & 7)) if lflags & 0x80 else 0) + 1  # + LZW minimum code size
            pos = sub_blocks_end(pos)
            out += data[start:pos]
        elif intro == 0x21 and pos + 1 < len(data):
            label = data[pos + 1]
            end = sub_blocks_end(pos + 2)
            app_id = data[pos + 3 : pos + 14] if label == 0xFF else b""
            if label == 0xFE:
                report.note("gif:comment")
            elif label == 0xFF and app_id not in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                report.note("gif:application-extension")
            else:
                out += data[pos:end]
            pos = end
        else:
            raise MalformedFile("bad GIF block")


def _sanitize_mutagen(data: bytes, report: SanitizeReport) -> bytes:
    import mutagen

    buffer = io.BytesIO(data)
    try:
        audio = mutagen.File(buffer)
    except mutagen.MutagenError:
        raise MalformedFile("unreadable audio") from None
    if audio is None:
        raise MalformedFile("unreadable audio")
    if audio.tags is not None:
        report.note(f"{report.kind.name.lower()}:tag", len({str(k) for k in audio.tags.keys()}))
        buffer.seek(0)
        audio.delete(buffer)
    return buffer.getvalue()


_WHOLE_FILE: dict[FileKind, Callable[[bytes, SanitizeReport], bytes]] = {
    FileKind.GIF: _sanitize_gif,
    FileKind.M4A: _sanitize_mutagen,
    FileKind.OGG: _sanitize_mutagen,
}

STREAMING_KINDS = frozenset(_STREAMING)
WHOLE_FILE_KINDS = frozenset(_WHOLE_FILE)


class SanitizedStream:
    """Async iterable of sanitised bytes; ``report`` is complete once iteration has finished."""

    def __init__(
        self,
        kind: FileKind,
        chunks: AsyncIterable[bytes],
        *,
        whole_file_limit: int = DEFAULT_WHOLE_FILE_LIMIT,
    ) -> None:
        if kind not in _STREAMING and kind not in _WHOLE_FILE:
            raise DisallowedFileType("no sanitizer for this kind")
        self.report = SanitizeReport(kind=kind)
        self._chunks = chunks
        self._limit = whole_file_limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        kind = self.report.kind
        if kind in _STREAMING:
            stream_filter = _STREAMING[kind](self.report)
            async for chunk in self._chunks:
                if out := stream_filter.feed(chunk):
                    yield out
            if out := stream_filter.close():
                yield out
        else:
            buffer = bytearray()
            async for chunk in self._chunks:
                buffer += chunk
                if len(buffer) > self._limit:
                    raise WholeFileLimitExceeded("file too large to sanitise in memory")
            data = bytes(buffer)
            del buffer
            # Parsing a PDF or a ZIP is CPU-bound; keep the event loop free.
            data = await asyncio.to_thread(_WHOLE_FILE[kind], data, self.report)
            view = memoryview(data)
            for offset in range(0, len(data), OUTPUT_CHUNK_SIZE):
                yield bytes(view[offset : offset + OUTPUT_CHUNK_SIZE])
        self.report.complete = True


def sanitize_stream(
    kind: FileKind, chunks: AsyncIterable[bytes], *, whole_file_limit: int = DEFAULT_WHOLE_FILE_LIMIT
) -> SanitizedStream:
    """Metadata-free bytes of ``chunks`` (already sniffed as ``kind``); see :class:`SanitizedStream`."""
    return SanitizedStream(kind, chunks, whole_file_limit=whole_file_limit)
