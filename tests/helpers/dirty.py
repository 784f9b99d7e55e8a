"""Dirty files crafted after the outside review of issue 16: each carries the identifying metadata that
review found surviving (tracked-change and comment authors, ``word/people.xml`` with an Active Directory
SID, EXIF in embedded images and thumbnails, an Office sensitivity-label GUID in custom properties; PDF
annotation authors, XMP on image XObjects, an embedded file with a user path, JavaScript). Every planted
value is one of ``CANARIES``, which the oracle (``tests/helpers/oracle.py``) looks for after cleaning."""

# ruff: noqa: E501 - the XML parts below are data, kept one element a line as Word writes them
from __future__ import annotations

import io
import zipfile

from PIL import Image

AUTHOR = "Canary Zhangwei"
SID = "S-1-5-21-3623811015-3361044348-30300820-1013"
SERIAL = "CANARYSERIAL4242"
COMPANY = "Canary Bureau Ltd"
USER_PATH = "C:/Users/canaryzw/Documents/secret.txt"
LABEL_GUID = "f42aa342-8706-4288-bd11-ebb85995028c"  # an Office sensitivity label names its organisation
ARTIST = "Canary Artist"
JS = "app.alert('canary-js')"
# Byte strings that must not survive cleaning (the GPS values are checked by exiftool tags, not bytes).
CANARIES = (
    AUTHOR, SID, SERIAL, COMPANY, "canaryzw", LABEL_GUID, ARTIST, "canary-js", "Canary",
)  # fmt: skip


def exif_jpeg(size: tuple[int, int] = (24, 24)) -> bytes:
    """A JPEG with EXIF artist, camera serial (ExifIFD BodySerialNumber) and GPS."""
    image = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "CanaryPhone"  # Make
    exif[0x013B] = ARTIST  # Artist
    exif[0x8769] = {0xA431: SERIAL}  # ExifIFD: BodySerialNumber
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 47.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CT = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Default Extension="jpeg" ContentType="image/jpeg"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
<Override PartName="/word/comments.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.comments+xml"/>
<Override PartName="/word/people.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.people+xml"/>
<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>
<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>
<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/>
</Types>"""
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>
<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" Target="docProps/custom.xml"/>
<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail" Target="docProps/thumbnail.jpeg"/>
</Relationships>"""
_DOC_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments" Target="comments.xml"/>
<Relationship Id="rId2" Type="http://schemas.microsoft.com/office/2011/relationships/people" Target="people.xml"/>
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.jpeg"/>
</Relationships>"""
_DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="{_W}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<w:body>
<w:p w:rsidR="00A1B2C3" w:rsidRDefault="00D4E5F6"><w:r><w:t>举报内容：某局违规发放补贴。</w:t></w:r></w:p>
<w:p><w:ins w:id="1" w:author="{AUTHOR}" w:date="2026-03-01T10:00:00Z"><w:r><w:t>新增一句。</w:t></w:r></w:ins>
<w:del w:id="2" w:author="{AUTHOR}" w:date="2026-03-01T10:01:00Z"><w:r><w:delText>删去一句。</w:delText></w:r></w:del>
<w:commentRangeStart w:id="0"/><w:r><w:t>附图如下。</w:t></w:r><w:commentRangeEnd w:id="0"/>
<w:r><w:commentReference w:id="0"/></w:r></w:p>
</w:body></w:document>"""
_COMMENTS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:comments xmlns:w="{_W}"><w:comment w:id="0" w:author="{AUTHOR}" w:initials="CZ" w:date="2026-03-01T10:02:00Z">
<w:p><w:r><w:t>my comment</w:t></w:r></w:p></w:comment></w:comments>"""
_PEOPLE = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">
<w15:person w15:author="{AUTHOR}"><w15:presenceInfo w15:providerId="AD" w15:userId="{SID}"/></w15:person>
</w15:people>"""
_CORE = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>{AUTHOR}</dc:creator>
<cp:lastModifiedBy>{AUTHOR}</cp:lastModifiedBy></cp:coreProperties>"""
_APP = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">
<Company>{COMPANY}</Company><Manager>{AUTHOR}</Manager></Properties>"""
_CUSTOM = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
 xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">
<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="2" name="MSIP_Label_{LABEL_GUID}_Enabled">
<vt:lpwstr>true</vt:lpwstr></property>
<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="3" name="MSIP_Label_{LABEL_GUID}_SiteId">
<vt:lpwstr>{LABEL_GUID}</vt:lpwstr></property></Properties>"""


def dirty_docx(*, embedded: bytes | None = None) -> bytes:
    """A DOCX with every leak of the review; ``embedded`` adds an embedded file part (e.g. another DOCX)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/document.xml", _DOCUMENT)
        z.writestr("word/_rels/document.xml.rels", _DOC_RELS)
        z.writestr("word/comments.xml", _COMMENTS)
        z.writestr("word/people.xml", _PEOPLE)
        z.writestr("word/media/image1.jpeg", exif_jpeg())
        z.writestr("docProps/thumbnail.jpeg", exif_jpeg((8, 8)))
        z.writestr("docProps/core.xml", _CORE)
        z.writestr("docProps/app.xml", _APP)
        z.writestr("docProps/custom.xml", _CUSTOM)
        if embedded is not None:
            z.writestr("word/embeddings/Microsoft_Word_Document.docx", embedded)
    return out.getvalue()


def dirty_pdf() -> bytes:
    """A PDF with an annotation author (/T), an image XObject carrying XMP, an embedded file named by a
    user path, document JavaScript and an author in /Info."""
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    page = pdf.pages[0]
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>{AUTHOR}</dc:creator>'
        f"<tiff:Artist xmlns:tiff='http://ns.adobe.com/tiff/1.0/'>{ARTIST}</tiff:Artist>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    image = pikepdf.Stream(pdf, bytes([200, 30, 30] * 16))
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = 4, 4, 8
    image.ColorSpace = pikepdf.Name.DeviceRGB
    image.Metadata = pdf.make_stream(xmp, Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=image))
    page.Contents = pdf.make_stream(b"q 100 0 0 100 50 50 cm /Im1 Do Q")
    note = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Text,
        Rect=[10, 10, 30, 30],
        T=pikepdf.String(AUTHOR),
        Contents=pikepdf.String("reviewed"),
    )
    page.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(note)]))
    attached = pikepdf.AttachedFileSpec(pdf, b"canary secret body " + AUTHOR.encode(), filename=USER_PATH)
    pdf.attachments[USER_PATH] = attached
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String(JS))
    pdf.docinfo["/Author"] = AUTHOR
    pdf.docinfo["/Company"] = COMPANY
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def text_pdf(text: str = "EVIDENCE LINE 2026") -> bytes:
    """A one-page PDF whose page draws ``text`` with a standard font, an author in /Info."""
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(300, 200))
    page = pdf.pages[0]
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
    )
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.Contents = pdf.make_stream(f"BT /F1 18 Tf 20 100 Td ({text}) Tj ET".encode())
    pdf.docinfo["/Author"] = AUTHOR
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def dirty_video(ffmpeg: str, container: str) -> bytes:
    """A one-second clip (``mp4``, ``mov`` or ``3gp``) with title, artist, comment, location and a
    per-stream handler name planted, made by ffmpeg itself."""
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"clip.{container}"
        subprocess.run(  # noqa: S603 - our own argument list
            [
                ffmpeg,
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=duration=1:size=176x144:rate=10",
                "-f",
                "lavfi",
                "-i",
                "sine=duration=1:sample_rate=8000",
                "-c:v",
                "mpeg4",
                "-c:a",
                "aac",
                "-ac",
                "1",
                "-metadata",
                f"title={AUTHOR}",
                "-metadata",
                f"artist={ARTIST}",
                "-metadata",
                f"comment={SERIAL}",
                "-metadata",
                "location=+39.9042+116.4074/",
                "-metadata:s:v",
                f"handler_name={COMPANY}",
                "-movflags",
                "+use_metadata_tags",
                str(target),
            ],  # fmt: skip
            check=True,
            timeout=60,
        )
        return target.read_bytes()


_ODF_CONTENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
 office:version="1.2"><office:body><office:text>
<text:tracked-changes><text:changed-region text:id="ct1"><text:deletion><office:change-info>
<dc:creator>{AUTHOR}</dc:creator><dc:date>2026-03-01T10:00:00</dc:date></office:change-info>
<text:p>删去一句。</text:p></text:deletion></text:changed-region></text:tracked-changes>
<text:p>举报内容：某局违规发放补贴。<office:annotation><dc:creator>{AUTHOR}</dc:creator>
<dc:date>2026-03-01T10:02:00</dc:date><text:p>my comment</text:p></office:annotation></text:p>
</office:text></office:body></office:document-content>"""
_ODF_META = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<office:meta><dc:creator>{AUTHOR}</dc:creator><meta:initial-creator>{AUTHOR}</meta:initial-creator>
<meta:user-defined meta:name="Company">{COMPANY}</meta:user-defined></office:meta></office:document-meta>"""
_ODF_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>
<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>
<manifest:file-entry manifest:full-path="manifest.rdf" manifest:media-type="application/rdf+xml"/>
<manifest:file-entry manifest:full-path="Thumbnails/thumbnail.png" manifest:media-type="image/png"/>
<manifest:file-entry manifest:full-path="Pictures/photo.jpg" manifest:media-type="image/jpeg"/>
</manifest:manifest>"""
_ODF_RDF = f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="content.xml">
<dc:creator xmlns:dc="http://purl.org/dc/elements/1.1/">{AUTHOR}</dc:creator></rdf:Description></rdf:RDF>"""


def dirty_odt() -> bytes:
    """An ODT with a comment and a tracked change by the author, meta.xml, manifest.rdf, a thumbnail and a
    picture with EXIF."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        z.writestr("content.xml", _ODF_CONTENT)
        z.writestr("meta.xml", _ODF_META)
        z.writestr("manifest.rdf", _ODF_RDF)
        z.writestr("Thumbnails/thumbnail.png", exif_jpeg((8, 8)))
        z.writestr("Pictures/photo.jpg", exif_jpeg())
        z.writestr("META-INF/manifest.xml", _ODF_MANIFEST)
    return out.getvalue()
