"""Our pre-pass over OpenDocument packages (ODT, ODS, ODP, ODG), for what mat2 0.13 leaves (see ``cleaners``).

mat2 removes ``meta.xml``, thumbnails, tracked changes and LibreOffice's configuration parts, but keeps
comments (``office:annotation`` with its ``dc:creator`` and ``dc:date``) and ``manifest.rdf`` (RDF
metadata, which may carry anything a writer put there). Before mat2 runs, this module drops those parts
and elements, and any other ``dc:creator``/``dc:date`` in the content, and keeps the package valid (the
``mimetype`` part first and stored, manifest entries of dropped parts removed). ``check`` verifies mat2's
output. Zip-bomb guards as for OOXML. Counts go to ``note`` under fixed labels only.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

from service.attachments.ooxml import NotOfficeDocument, guarded_open, parse, read_part, serialise

KINDS = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/vnd.oasis.opendocument.graphics": "odg",
}
_DROP = {
    "odf:rdf-metadata": re.compile(r"^manifest\.rdf$|(^|/)meta\.xml$"),
    "odf:thumbnail": re.compile(r"^thumbnails/"),
    "odf:settings": re.compile(r"^configurations2/|^layout-cache$"),
}
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_MANIFEST = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}"
_REMOVE = {
    f"{_OFFICE}annotation": "odf:comments",
    f"{_OFFICE}annotation-end": "odf:comments",
    f"{_TEXT}tracked-changes": "odf:revisions-and-authors",
    f"{_DC}creator": "odf:revisions-and-authors",
    f"{_DC}date": "odf:revisions-and-authors",
}


def _dropped(name: str) -> str | None:
    lowered = name.lower()
    for label, pattern in _DROP.items():
        if pattern.search(lowered):
            return label
    return None


def prepare(source: Path, target: Path, note: Callable[[str, int], None]) -> str:
    """Write ``source`` without the parts and elements above to ``target``; returns "odt", "ods",
    "odp" or "odg". Raises :class:`NotOfficeDocument` for anything else."""
    with guarded_open(source) as archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        names = {e.filename for e in entries}
        if "mimetype" not in names or "content.xml" not in names:
            raise NotOfficeDocument()
        kind = KINDS.get(read_part(archive, archive.getinfo("mimetype")).strip())
        if kind is None:
            raise NotOfficeDocument()
        dropped = set()
        for entry in entries:
            if label := _dropped(entry.filename):
                dropped.add(entry.filename)
                note(label, 1)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            # ODF: "mimetype" first, uncompressed, so the kind can be read at a fixed offset.
            mimetype = zipfile.ZipInfo("mimetype", date_time=(1980, 1, 1, 0, 0, 0))
            out.writestr(mimetype, read_part(archive, archive.getinfo("mimetype")), zipfile.ZIP_STORED)
            for entry in entries:
                if entry.filename in dropped or entry.filename == "mimetype":
                    continue
                body = read_part(archive, entry)
                try:
                    if entry.filename == "META-INF/manifest.xml":
                        body = _without_entries(body, dropped)
                    elif entry.filename.lower().endswith(".xml"):
                        body = _without_people(body, note)
                except ElementTree.ParseError:
                    raise NotOfficeDocument() from None
                out.writestr(zipfile.ZipInfo(entry.filename, date_time=(1980, 1, 1, 0, 0, 0)), body)
    return kind


def _without_entries(body: bytes, dropped: set[str]) -> bytes:
    root = parse(body)
    for item in list(root):
        if item.get(f"{_MANIFEST}full-path", "") in dropped:
            root.remove(item)
    return serialise(root)


def _without_people(body: bytes, note) -> bytes:  # type: ignore[no-untyped-def]
    if b"annotation" not in body and b"tracked-changes" not in body and b"dc:" not in body:
        return body
    root = parse(body)
    _remove_people(root, note)
    return serialise(root)


def _remove_people(parent: ElementTree.Element, note) -> None:  # type: ignore[no-untyped-def]
    for child in list(parent):
        if (label := _REMOVE.get(child.tag)) is not None:
            parent.remove(child)  # with everything inside it: counted once
            note(label, 1)
        else:
            _remove_people(child, note)


def check(path: Path) -> bool:
    """True when mat2's output has no dropped part and no comment or person element left."""
    try:
        with guarded_open(path) as archive:
            for entry in archive.infolist():
                if _dropped(entry.filename):
                    return False
                if entry.filename.lower().endswith(".xml"):
                    body = read_part(archive, entry)
                    if re.search(rb"<office:annotation[\s>]|<dc:creator>|<text:tracked-changes", body):
                        return False
    except NotOfficeDocument:
        return False
    return True
