"""Our pre-pass over OOXML packages, for what mat2 0.13 refuses or leaves (see ``cleaners``).

mat2 refuses a document with Word's ``comments.xml`` family and PowerPoint's or Excel's comment and person
parts (it knows no parser for them, so the whole file would be refused), keeps embedded files, and removes
revision marks only from ``word/document.xml``. Before mat2 runs, this module:

- drops whole families of parts: comments (every variant), people/persons, embedded files and OLE
  objects, thumbnails, custom properties, custom XML, VBA projects, printer settings;
- drops relationships and content-type overrides that point at dropped parts (Office refuses dangling ones);
- in every remaining XML part: removes comment anchors, deleted and moved-from text, formatting-change
  records; keeps inserted and moved-to text (the document as its author last saw it), and removes every
  attribute that names a person (``author``, ``initials``, ``userId``, ``providerId``).

Zip-bomb guards as for every archive we open. ``check`` verifies mat2's output: no part of a dropped
family and no person-naming attribute is left. Counts go to ``note`` under fixed labels only.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

MAX_ZIP_ENTRIES = 5000
MAX_ZIP_UNCOMPRESSED = 256 * 1024 * 1024
MAX_ZIP_RATIO = 200

# label -> part-name pattern (lower-cased names)
_DROP = {
    "office:comments": re.compile(
        r"(^|/)(comments[^/]*\.xml|commentauthors\.xml)$|^(ppt|xl)/comments/|^xl/threadedcomments/"
    ),
    "office:people": re.compile(r"(^|/)people\.xml$|^xl/persons/"),
    "office:embedded-files": re.compile(r"(^|/)(embeddings|activex)/|oleobject[^/]*$"),
    "office:thumbnail": re.compile(r"^docprops/thumbnail\.|(^|/)thumbnail\.(jpe?g|png|wmf|emf)$"),
    "office:custom-properties": re.compile(r"^docprops/custom\.xml$|^customxml/"),
    "office:macros": re.compile(r"vbaproject\.bin$|vbadata\.xml$"),
    "office:printer-settings": re.compile(r"(^|/)printersettings/"),
}  # fmt: skip
_PERSON_ATTRIBUTES = {"author", "initials", "userId", "providerId", "dateUtc"}
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_REMOVE_ELEMENTS = {
    f"{_W}{name}"
    for name in (
        "del", "moveFrom", "moveFromRangeStart", "moveFromRangeEnd", "moveToRangeStart", "moveToRangeEnd",
        "commentRangeStart", "commentRangeEnd", "commentReference", "rPrChange", "pPrChange",
        "sectPrChange", "tblPrChange", "trPrChange", "tcPrChange", "tblGridChange", "numberingChange",
        "customXmlDelRangeStart", "customXmlDelRangeEnd", "customXmlInsRangeStart", "customXmlInsRangeEnd",
        "customXmlMoveFromRangeStart", "customXmlMoveFromRangeEnd", "customXmlMoveToRangeStart",
        "customXmlMoveToRangeEnd",
    )
}  # fmt: skip
_UNWRAP_ELEMENTS = {f"{_W}ins", f"{_W}moveTo"}


class NotOfficeDocument(Exception):
    """The package cannot be read, is too large when expanded, or is not an office document."""


def _dropped(name: str) -> str | None:
    lowered = name.lower()
    for label, pattern in _DROP.items():
        if pattern.search(lowered):
            return label
    return None


def guarded_open(path: Path) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise NotOfficeDocument() from None
    total = sum(e.file_size for e in entries)
    if len(entries) > MAX_ZIP_ENTRIES or total > MAX_ZIP_UNCOMPRESSED:
        raise NotOfficeDocument()
    if total > MAX_ZIP_RATIO * max(path.stat().st_size, 1):
        raise NotOfficeDocument()
    return archive


def read_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with archive.open(info) as handle:
        body = handle.read(info.file_size + 1)  # a lying header cannot make a part expand further
    if len(body) > info.file_size:
        raise NotOfficeDocument()
    return body


_MAIN_PARTS = {
    "docx": ("word/document.xml", b"wordprocessingml.document.main+xml"),
    "xlsx": ("xl/workbook.xml", b"spreadsheetml.sheet.main+xml"),
    "pptx": ("ppt/presentation.xml", b"presentationml.presentation.main+xml"),
}


def _office_kind(archive: zipfile.ZipFile, names: set[str]) -> str:
    """Which office document this is, from the central directory and the declared main part."""
    if "[Content_Types].xml" not in names:
        raise NotOfficeDocument()
    declared = read_part(archive, archive.getinfo("[Content_Types].xml"))
    found = [
        kind
        for kind, (part, content_type) in _MAIN_PARTS.items()
        if part in names and content_type in declared
    ]
    if len(found) != 1:
        raise NotOfficeDocument()
    return found[0]


def prepare(source: Path, target: Path, note: Callable[[str, int], None]) -> str:
    """Write ``source`` without the parts and markup listed in the module docstring to ``target``;
    returns the document's kind ("docx", "xlsx" or "pptx")."""
    with guarded_open(source) as archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        names = {e.filename for e in entries}
        kind = _office_kind(archive, names)
        dropped: set[str] = set()
        for entry in entries:
            if label := _dropped(entry.filename):
                dropped.add(entry.filename)
                note(label, 1)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in entries:
                if entry.filename in dropped:
                    continue
                body = read_part(archive, entry)
                lowered = entry.filename.lower()
                try:
                    if lowered == "[content_types].xml":
                        body = _without_overrides(body, dropped)
                    elif lowered.endswith(".rels"):
                        body = _without_relationships(entry.filename, body, dropped, note)
                    elif lowered.endswith(".xml"):
                        body = _without_people(body, note)
                except ElementTree.ParseError:
                    raise NotOfficeDocument() from None
                # Fresh entries: no original timestamps, comments or extra fields.
                out.writestr(zipfile.ZipInfo(entry.filename, date_time=(1980, 1, 1, 0, 0, 0)), body)
    return kind


def parse(body: bytes) -> ElementTree.Element:
    # Keep the document's own prefixes: Office reads namespaces by prefix in mc:Ignorable.
    # expat fetches no external entities; the zip-bomb guards bound the part's size.
    for _event, (prefix, uri) in ElementTree.iterparse(_Bytes(body), events=("start-ns",)):  # noqa: S314
        with contextlib.suppress(ValueError):  # reserved prefixes ("ns0"...) are ElementTree's own
            ElementTree.register_namespace(prefix, uri)
    return ElementTree.fromstring(body)  # noqa: S314 - expat fetches no external entities


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def serialise(root: ElementTree.Element) -> bytes:
    return ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)


def _without_overrides(body: bytes, dropped: set[str]) -> bytes:
    root = parse(body)
    for item in list(root):
        if item.get("PartName", "").lstrip("/") in dropped:
            root.remove(item)
    return serialise(root)


def _without_relationships(rels_name: str, body: bytes, dropped: set[str], note) -> bytes:  # type: ignore[no-untyped-def]
    root = parse(body)
    base = rels_name.rsplit("_rels/", 1)[0]  # "word/_rels/document.xml.rels" -> "word/"
    for item in list(root):
        target = item.get("Target", "")
        if item.get("TargetMode") == "External":
            root.remove(item)  # a link to a path or a server can name the author's machine
            note("office:external-links", 1)
            continue
        resolved = _resolve(base, target)
        kind = item.get("Type", "").rsplit("/", 1)[-1].lower()
        if resolved in dropped or kind in {
            "comments",
            "people",
            "thumbnail",
            "custom-properties",
            "oleobject",
        }:
            root.remove(item)
    return serialise(root)


def _resolve(base: str, target: str) -> str:
    parts = [] if target.startswith("/") else [p for p in base.split("/") if p]
    for piece in target.lstrip("/").split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece and piece != ".":
            parts.append(piece)
    return "/".join(parts)


def _without_people(body: bytes, note) -> bytes:  # type: ignore[no-untyped-def]
    if b"author" not in body and b"comment" not in body and b"w:del" not in body and b"Change" not in body:
        if b"userId" not in body and b"initials" not in body and b"moveFrom" not in body:
            return body  # nothing to do: leave the bytes as they were
    root = parse(body)
    removed = _clean_tree(root)
    if removed:
        note("office:revisions-and-authors", removed)
    return serialise(root)


def _clean_tree(parent: ElementTree.Element) -> int:
    removed = 0
    index = 0
    while index < len(parent):
        child = parent[index]
        if child.tag in _REMOVE_ELEMENTS:
            parent.remove(child)
            removed += 1
            continue
        removed += _clean_tree(child)
        for name in list(child.attrib):
            if name.rsplit("}", 1)[-1] in _PERSON_ATTRIBUTES:
                del child.attrib[name]
                removed += 1
        if child.tag in _UNWRAP_ELEMENTS:
            parent.remove(child)
            for offset, grandchild in enumerate(list(child)):
                parent.insert(index + offset, grandchild)
            index += len(child)
            removed += 1
            continue
        index += 1
    return removed


def dropped_count(before: Path, after: Path) -> int:
    """How many parts of ``before`` are not in ``after`` (what mat2 left out)."""
    with guarded_open(before) as first, guarded_open(after) as second:
        return len(set(first.namelist()) - set(second.namelist()))


def check(path: Path) -> bool:
    """True when mat2's output has no part of a dropped family and no person-naming attribute."""
    try:
        with guarded_open(path) as archive:
            for entry in archive.infolist():
                if _dropped(entry.filename):
                    return False
                if entry.filename.lower().endswith((".xml", ".rels")):
                    body = read_part(archive, entry)
                    if re.search(rb"\s(?:\w+:)?(?:author|userId|providerId)=", body):
                        return False
    except NotOfficeDocument:
        return False
    return True
