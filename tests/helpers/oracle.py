"""The independent oracle for cleaned attachments: another project's tool (exiftool, Debian's
libimage-exiftool-perl, run as ``exiftool -a -G1 -ee``) plus a byte search over every zip member (nested
archives too) and every decoded PDF stream and string. It shares no code with the cleaners it checks.

``findings(data, extra=...)`` returns what identifies: metadata tags that name a person, an organisation, a
device or a place, any XMP, user paths, and the planted canaries; images and PDFs inside archives are
given to exiftool too. An empty list means clean."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path

from tests.helpers.tools import apt, require_executable

# Tag names (exiftool's, without group) that identify a person, organisation, device or place.
IDENTIFYING_TAGS = re.compile(
    r"^(Author|Authors|Creator|Artist|Company|Manager|LastModifiedBy|Last Modified By|Owner\w*"
    r"|\w*SerialNumber|Serial Number|GPS\w*|Camera Owner Name|User Comment|Copyright|XP Author|By-line"
    r"|Writer-Editor|Initial Creator|Identifier|Person In Image|Location\w*|Make|Model|Lens\w*|Host Computer"
    r"|Software|Producer|Creator Tool|Comment|Description|Title|Subject|Keywords|Template|Hyperlink Base"
    r"|Document ID|Instance ID|Original Document ID|Com\.apple\.quicktime\.\w+)$",
    re.IGNORECASE,
)
# Values a cleaner writes on purpose (tool names, neutral defaults) are not identifying.
NEUTRAL_VALUES = re.compile(r"^(|0+|none|unknown|\(none\)|0000:00:00 00:00:00|-)$", re.IGNORECASE)
BYTE_PATTERNS = [
    re.compile(rb"[A-Za-z]:[\\/]+(?:Users|Documents and Settings)[\\/]", re.IGNORECASE),
    re.compile(rb"/(?:home|Users)/[a-z0-9_.-]+/", re.IGNORECASE),
    re.compile(rb"S-1-5-21-\d+"),
    re.compile(rb"<x:xmpmeta|<rdf:RDF|xmlns:xmp=", re.IGNORECASE),
    re.compile(rb"w:author=|w15:userId=|cp:lastModifiedBy>|<dc:creator>[^<]", re.IGNORECASE),
]
MAX_DEPTH = 4
_MEDIA_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"II*\x00", b"MM\x00*", b"GIF8", b"RIFF", b"%PDF")


def exiftool() -> str:
    return require_executable("exiftool", apt("libimage-exiftool-perl"))


def exif_tags(data: bytes, suffix: str = ".bin") -> list[tuple[str, str, str]]:
    """(group, tag, value) of every tag exiftool reports, embedded documents included."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"file{suffix}"
        path.write_bytes(data)
        done = subprocess.run(  # noqa: S603 - our own argument list
            [exiftool(), "-a", "-G1", "-ee", "-s0", "-charset", "utf8", str(path)],
            capture_output=True,
            timeout=120,
            check=False,
        )
    tags = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        match = re.match(r"^\[([^\]]*)\]\s+(.+?)\s*:\s?(.*)$", line)
        if match:
            tags.append((match[1], match[2], match[3]))
    return tags


def _tag_findings(data: bytes, suffix: str) -> list[str]:
    found = []
    for group, tag, value in exif_tags(data, suffix):
        if group in ("ExifTool", "System", "File", "Composite"):
            continue  # the tool's own view of the file on disk
        if group.startswith("XMP"):
            found.append(f"exiftool: XMP {group}:{tag}")
        elif IDENTIFYING_TAGS.match(tag.replace(" ", "")) or IDENTIFYING_TAGS.match(tag):
            if not NEUTRAL_VALUES.match(value.strip()):
                found.append(f"exiftool: {group}:{tag}")
    return found


def _members(data: bytes, depth: int = 0) -> list[tuple[str, bytes]]:
    """The bytes themselves, every zip member (recursively) and every decoded PDF stream and string."""
    out = [("(file)", data)]
    if depth >= MAX_DEPTH:
        return out
    if data.startswith(b"PK\x03\x04"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            for name in archive.namelist():
                inside = _members(archive.read(name), depth + 1)
                out.extend((f"{name}>{inner}", body) for inner, body in inside)
                out.append((f"(name) {name}", name.encode()))
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):
            pass
    elif data.startswith(b"%PDF"):
        out.extend(_pdf_parts(data))
    return out


def _pdf_parts(data: bytes) -> list[tuple[str, bytes]]:
    import pikepdf

    parts = []
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PdfError:
        return parts
    with pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream):
                try:
                    parts.append((f"stream {obj.objgen}", obj.read_bytes()))
                except pikepdf.PdfError:
                    parts.append((f"raw stream {obj.objgen}", obj.read_raw_bytes()))
            try:
                parts.append((f"object {obj.objgen}", repr(obj).encode("utf-8", "replace")))
            except Exception:  # noqa: S112 - a damaged object's stream is still searched above
                continue
        parts.append(("trailer", repr(pdf.trailer).encode("utf-8", "replace")))
    return parts


def findings(data: bytes, *, suffix: str = ".bin", canaries: tuple[str, ...] = ()) -> list[str]:
    """Everything identifying left in ``data`` (see the module docstring); ``[]`` means clean."""
    found = _tag_findings(data, suffix)
    needles = [c.encode("utf-8") for c in canaries] + [c.encode("utf-16-le") for c in canaries if c.isascii()]
    for where, body in _members(data):
        if where != "(file)" and body.startswith(_MEDIA_MAGIC):  # images inside documents: exiftool too
            found.extend(f"{item} in {where}" for item in _tag_findings(body, ".bin"))
        for pattern in BYTE_PATTERNS:
            if pattern.search(body):
                found.append(f"bytes: {pattern.pattern[:30]!r} in {where}")
        lowered = body.lower()
        for needle in needles:
            if needle.lower() in lowered:
                found.append(f"bytes: canary {needle[:20]!r} in {where}")
    return sorted(set(found))
