"""File type detection from the first bytes of an upload, never from its name or declared content type.

Only allow-listed kinds pass; everything else raises :class:`DisallowedFileType`. Signatures are written out
here rather than taken from a general-purpose magic database, because an allow-list must say exactly what it
accepts (a magic database answers "what could this be", which is the wrong question).

Containers are detected in two steps: ZIP-based office files are recognised here from the local file
headers in the window (``[Content_Types].xml`` plus a ``word/``, ``xl/`` or ``ppt/`` part), and the
sanitizer confirms them from the central directory when it rewrites the file. Legacy OLE files can only be
told apart by their directory, which may sit anywhere in the file, so the sanitizer resolves
``LEGACY_OFFICE`` to ``DOC`` or ``XLS`` (or rejects it).
"""

from __future__ import annotations

import codecs
import enum
import re
import struct

SNIFF_WINDOW = 64 * 1024


class DisallowedFileType(Exception):
    """The upload is not one of the accepted kinds. The message never echoes content."""

    def __init__(self, reason: str = "file type not allowed") -> None:
        super().__init__(reason)
        self.reason = reason


class FileKind(enum.StrEnum):
    """Canonical kinds; the value is the media type served back to investigators."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    GIF = "image/gif"
    WEBP = "image/webp"
    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    ODT = "application/vnd.oasis.opendocument.text"
    ODS = "application/vnd.oasis.opendocument.spreadsheet"
    ODP = "application/vnd.oasis.opendocument.presentation"
    ODG = "application/vnd.oasis.opendocument.graphics"
    ZIP = "application/zip"  # a plain archive: each member cleaned by its own kind (``archives``)
    TAR = "application/x-tar"  # uncompressed, POSIX or GNU: the same as ZIP
    TIFF = "image/tiff"
    SVG = "image/svg+xml"
    LEGACY_OFFICE = "application/x-ole-storage"  # provisional; resolved by the sanitizer
    DOC = "application/msword"
    XLS = "application/vnd.ms-excel"
    MP3 = "audio/mpeg"
    AAC = "audio/aac"
    M4A = "audio/mp4"
    WAV = "audio/wav"
    AMR = "audio/amr"
    OGG = "audio/ogg"
    MP4 = "video/mp4"
    MOV = "video/quicktime"
    THREE_GP = "video/3gpp"
    HEIC = "image/heic"
    TEXT_UTF8 = "text/plain; charset=utf-8"
    TEXT_GB18030 = "text/plain; charset=gb18030"

    @property
    def category(self) -> str:
        if self.value.startswith("image/"):
            return "image"
        if self.value.startswith("audio/"):
            return "audio"
        if self.value.startswith("text/"):
            return "text"
        if self.value.startswith("video/"):
            return "video"
        return "document"


# The extension of each kind: neutral names shown to staff ("附件1.jpg") and archive members ("1.jpg").
EXTENSIONS = {
    FileKind.JPEG: "jpg", FileKind.PNG: "png", FileKind.GIF: "gif", FileKind.WEBP: "webp",
    FileKind.PDF: "pdf", FileKind.DOCX: "docx", FileKind.XLSX: "xlsx", FileKind.PPTX: "pptx",
    FileKind.DOC: "doc", FileKind.XLS: "xls", FileKind.MP3: "mp3", FileKind.AAC: "aac", FileKind.M4A: "m4a",
    FileKind.WAV: "wav", FileKind.AMR: "amr", FileKind.OGG: "ogg", FileKind.TEXT_UTF8: "txt",
    FileKind.TEXT_GB18030: "txt", FileKind.MP4: "mp4", FileKind.MOV: "mov", FileKind.THREE_GP: "3gp",
    FileKind.HEIC: "heic", FileKind.LEGACY_OFFICE: "doc", FileKind.ODT: "odt", FileKind.ODS: "ods",
    FileKind.ODP: "odp", FileKind.ODG: "odg", FileKind.ZIP: "zip", FileKind.TAR: "tar", FileKind.TIFF: "tif",
    FileKind.SVG: "svg",
}  # fmt: skip

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_M4A_BRANDS = {b"M4A ", b"M4B ", b"F4A "}
# ISO-BMFF major brands of what phones and cameras produce (the "ftyp" box at the start of the file).
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_MOV_BRANDS = {b"qt  "}
_3GP_BRANDS = {
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3gp7",
    b"3gs7",
    b"3ge6",
    b"3ge7",
    b"3gg6",
    b"3g2a",
    b"3g2b",
    b"3g2c",
}
_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"MSNV",
    b"dash",
    b"M4V ",
}
_PACKAGE_PARTS = ("[Content_Types].xml", "_rels/", "docProps/", "customXml/")  # parts of any OOXML package
_OFFICE_PREFIXES = {"word/": FileKind.DOCX, "xl/": FileKind.XLSX, "ppt/": FileKind.PPTX}
_MARKUP_STARTS = ("<!doctype", "<html", "<?xml", "<svg", "<script", "<head", "<body", "<iframe", "<!--")
# Bytes that never occur in plain text: C0 controls other than tab, LF, FF, CR and ESC, and DEL.
_BINARY_BYTES = frozenset(set(range(0x00, 0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B} | {0x7F})


def sniff(head: bytes, *, complete: bool = False) -> FileKind:
    """Detect the kind of an upload from its first bytes.

    ``head`` should be the first :data:`SNIFF_WINDOW` bytes (or the whole file if shorter, in which case
    pass ``complete=True`` so a multi-byte character cut at the window's end is not held against text).
    """
    if not head:
        raise DisallowedFileType("empty file")
    if head.startswith(b"\xff\xd8\xff"):
        return FileKind.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileKind.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return FileKind.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileKind.WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return FileKind.WAV
    if head.startswith(b"%PDF-"):
        return FileKind.PDF
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return FileKind.TIFF
    if head.startswith(b"PK\x03\x04"):
        return _sniff_odf(head) or _sniff_office_zip(head)
    if head.startswith(_OLE_MAGIC):
        return FileKind.LEGACY_OFFICE
    if head[257:262] == b"ustar" and _tar_checksum_ok(head[:512]):  # POSIX and GNU headers
        return FileKind.TAR
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _M4A_BRANDS:
            return FileKind.M4A
        if brand in _HEIC_BRANDS:
            return FileKind.HEIC
        if brand in _MOV_BRANDS:
            return FileKind.MOV
        if brand in _3GP_BRANDS:
            return FileKind.THREE_GP
        if brand in _MP4_BRANDS:
            return FileKind.MP4
        raise DisallowedFileType("media container not allowed")
    if head.startswith((b"#!AMR\n", b"#!AMR-WB\n")):
        return FileKind.AMR
    if head.startswith(b"OggS"):
        return FileKind.OGG
    if head.startswith(b"ID3"):
        return _sniff_after_id3(head)
    if (audio := _mpeg_audio_frame(head)) is not None:
        return audio
    return _sniff_text(head, complete=complete)


def _tar_checksum_ok(header: bytes) -> bool:
    """The header's checksum field (octal) is the sum of its bytes with that field read as spaces: text
    that merely has "ustar" at offset 257 is not taken for an archive."""
    if len(header) < 512:
        return False
    try:
        stored = int(header[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(header[:148]) + 8 * 32 + sum(header[156:512])


def _sniff_after_id3(head: bytes) -> FileKind:
    if len(head) < 10:
        raise DisallowedFileType("truncated audio tag")
    size = _syncsafe(head[6:10])
    if size is None:
        raise DisallowedFileType("malformed audio tag")
    offset = 10 + size + (10 if head[5] & 0x10 else 0)
    if offset + 4 > len(head):
        # The tag is larger than the window; its frames are checked by the streaming filter.
        return FileKind.MP3
    audio = _mpeg_audio_frame(head[offset:])
    if audio is None:
        raise DisallowedFileType("tag not followed by audio")
    return audio


def _syncsafe(raw: bytes) -> int | None:
    if any(b & 0x80 for b in raw):
        return None
    return (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]


def _mpeg_audio_frame(data: bytes) -> FileKind | None:
    """MPEG audio (layer III) or ADTS AAC frame header at the start of ``data``."""
    if len(data) < 4 or data[0] != 0xFF or (data[1] & 0xE0) != 0xE0:
        return None
    version = (data[1] >> 3) & 0x03
    layer = (data[1] >> 1) & 0x03
    if layer == 0:
        # ADTS: MPEG-2/4 AAC, layer bits zero; sampling index 13..15 are invalid.
        if (data[1] & 0xF6) == 0xF0 and ((data[2] >> 2) & 0x0F) < 13:
            return FileKind.AAC
        return None
    bitrate = data[2] >> 4
    samplerate = (data[2] >> 2) & 0x03
    if version == 1 or bitrate in (0, 15) or samplerate == 3:
        return None
    return FileKind.MP3


_ODF_KINDS = {kind.value.encode(): kind for kind in (FileKind.ODT, FileKind.ODS, FileKind.ODP, FileKind.ODG)}


def _sniff_odf(head: bytes) -> FileKind | None:
    """OpenDocument: the first part is ``mimetype``, stored, holding the media type (ODF 1.2, 3.3)."""
    if len(head) < 38 or head[30:38] != b"mimetype":
        return None
    (method,) = struct.unpack_from("<H", head, 8)
    (size,) = struct.unpack_from("<I", head, 18)
    name_len, extra_len = struct.unpack_from("<HH", head, 26)
    if method != 0 or name_len != 8:
        raise DisallowedFileType("archive is not an office document")
    start = 30 + name_len + extra_len
    kind = _ODF_KINDS.get(head[start : start + size])
    if kind is None:
        raise DisallowedFileType("OpenDocument kind not accepted")  # formulas, templates, EPUB
    return kind


def _sniff_office_zip(head: bytes) -> FileKind:
    """The office kind its part names show. Writers order parts differently (LibreOffice puts
    ``[Content_Types].xml`` last), so one decisive name is enough here: the office pre-pass confirms the
    kind and the declared main part from the central directory (``ooxml.prepare``) and refuses others."""
    names, complete = _zip_local_names(head)
    kinds = {kind for name in names for prefix, kind in _OFFICE_PREFIXES.items() if name.startswith(prefix)}
    if len(kinds) == 1:
        return kinds.pop()
    if not kinds and not complete and names and all(name.startswith(_PACKAGE_PARTS) for name in names):
        return FileKind.DOCX  # provisional: the first parts say nothing more; the pre-pass resolves it
    if not kinds and names:
        return FileKind.ZIP  # any other archive: its members are sniffed and cleaned one by one
    raise DisallowedFileType("archive is not an office document")


def _zip_local_names(head: bytes) -> tuple[list[str], bool]:
    """Names from consecutive local file headers inside the window, and whether the walk reached the
    end of the local headers (False: it stopped at one it cannot skip, or at the window's end)."""
    names = []
    offset = 0
    while offset + 30 <= len(head) and head[offset : offset + 4] == b"PK\x03\x04":
        flags, _method = struct.unpack_from("<HH", head, offset + 6)
        compressed, _size, name_len, extra_len = struct.unpack_from("<IIHH", head, offset + 18)
        name = head[offset + 30 : offset + 30 + name_len]
        if len(name) < name_len:
            return names, False
        names.append(name.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
        if flags & 0x08:
            return names, False  # sizes follow the data (data descriptor): cannot walk on without inflating
        offset += 30 + name_len + extra_len + compressed
    return names, head[offset : offset + 4] == b"PK\x01\x02"


def _sniff_text(head: bytes, *, complete: bool) -> FileKind:
    if _BINARY_BYTES.intersection(head):
        raise DisallowedFileType("binary content")
    for encoding, kind in (("utf-8", FileKind.TEXT_UTF8), ("gb18030", FileKind.TEXT_GB18030)):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            text = decoder.decode(head, final=complete)
        except UnicodeDecodeError:
            continue
        if _SVG_START.match(text.lstrip("\ufeff \t\r\n")):
            return FileKind.SVG  # redrawn by mat2 (no script, no metadata survives), or sealed
        if _looks_like_markup(text):
            raise DisallowedFileType("markup is not plain text")
        return kind
    raise DisallowedFileType("undecodable text")


# An SVG image: the first element is <svg>, after an XML declaration, comments and a doctype at most.
_SVG_START = re.compile(
    r"(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!doctype svg[^>]*>\s*)?(<!--.*?-->\s*)*<svg[\s>]", re.I | re.S
)


def _looks_like_markup(text: str) -> bool:
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(_MARKUP_STARTS):
        return True
    return "<script" in lowered or "<html" in lowered
