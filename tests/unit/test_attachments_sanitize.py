"""Sniffing and our own streaming/in-memory metadata removal on files generated here (Pillow, mutagen).
Office documents, PDF, HEIC and video go to mat2/ffmpeg: tests/unit/test_attachments_cleaners.py."""

import io
import struct
import zipfile
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from service.attachments.sanitize import MalformedFile, sanitize_stream
from service.attachments.sniff import DisallowedFileType, FileKind, sniff
from tests.helpers.media import jpeg_with_gps

CANARY = "ZHANGSAN-CANARY-4711"


async def chunked(data: bytes, step: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def sanitize(kind: FileKind, data: bytes, step: int = 1000, **kw) -> tuple[bytes, list[str], FileKind]:
    stream = sanitize_stream(kind, chunked(data, step), **kw)
    out = b"".join([c async for c in stream])
    assert stream.report.complete
    return out, stream.report.removed, stream.report.kind


def png_with_text() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", CANARY)
    info.add_itxt("Comment", CANARY, zip=True)
    buf = io.BytesIO()
    Image.new("RGBA", (20, 20), (1, 2, 3, 4)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def pdf_with_author() -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    with pdf.open_metadata() as meta:
        meta["dc:creator"] = [CANARY]
    pdf.docinfo["/Author"] = CANARY
    pdf.docinfo["/Producer"] = CANARY
    pdf.docinfo["/Title"] = CANARY
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def docx_with_author() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("what happened")
    document.core_properties.author = CANARY
    document.core_properties.last_modified_by = CANARY
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def mp3_with_tags(frames: int = 50) -> bytes:
    from mutagen.id3 import ID3, TIT2, TPE1

    frame = b"\xff\xfb\x90\x00" + bytes(413)  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz: 417 bytes
    buf = io.BytesIO(frame * frames)
    tags = ID3()
    tags.add(TIT2(encoding=3, text=CANARY))
    tags.add(TPE1(encoding=3, text=CANARY))
    tags.save(buf)
    v1 = b"TAG" + CANARY.encode().ljust(30, b"\0") + bytes(95)
    return buf.getvalue() + v1


def test_sniff_allow_list() -> None:
    assert sniff(jpeg_with_gps(make=CANARY)) is FileKind.JPEG
    assert sniff(png_with_text()) is FileKind.PNG
    assert sniff(pdf_with_author()) is FileKind.PDF
    assert sniff(docx_with_author()) is FileKind.DOCX
    assert sniff(mp3_with_tags()) is FileKind.MP3
    assert sniff("举报内容：某派出所民警收红包。\n".encode(), complete=True) is FileKind.TEXT_UTF8
    assert sniff("举报内容：某派出所民警收红包。\n".encode("gb18030"), complete=True) is FileKind.TEXT_GB18030
    assert sniff(b"RIFF\x24\x00\x00\x00WAVEfmt ") is FileKind.WAV
    assert sniff(b"#!AMR\n\x3c") is FileKind.AMR
    assert sniff(b"OggS\x00\x02") is FileKind.OGG
    assert sniff(b"\x00\x00\x00\x20ftypM4A \x00\x00") is FileKind.M4A
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00") is FileKind.HEIC  # what phones produce
    assert sniff(b"\x00\x00\x00\x18ftypisom\x00\x00") is FileKind.MP4
    assert sniff(b"\x00\x00\x00\x14ftypqt  \x00\x00") is FileKind.MOV
    assert sniff(b"\x00\x00\x00\x18ftyp3gp4\x00\x00") is FileKind.THREE_GP
    assert sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)) is FileKind.LEGACY_OFFICE
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "GIF")
    assert sniff(buf.getvalue()) is FileKind.GIF


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(100),  # Windows executable
        b"\x7fELF\x02\x01\x01" + bytes(100),
        b"<!DOCTYPE html><html><body>hi</body></html>",
        b"  <html><script>alert(1)</script>",
        b"hello <script>alert(1)</script>",
        b"<html><body><svg xmlns='http://www.w3.org/2000/svg'/></body></html>",  # a page, not an image
        b"",
        b"text with a \x00 NUL",
        b"\x00\x00\x00\x18ftypavif\x00\x00",  # AVIF: no cleaner for it
        b"\x00\x00\x00\x18ftypcrx \x00\x00",  # camera raw
        b"\x1f\x8b\x08\x00",  # gzip
    ],
)
def test_sniff_rejects(data: bytes) -> None:
    with pytest.raises(DisallowedFileType):
        sniff(data, complete=True)


def test_sniff_office_zip_in_any_part_order() -> None:
    # LibreOffice writes [Content_Types].xml last, and with data descriptors the walk stops at the first
    # part: package parts alone make a provisional Word kind that the office pre-pass confirms or refuses.
    assert (
        sniff(zip_of({"_rels/.rels": b"x", "word/document.xml": b"y", "[Content_Types].xml": b"z"}))
        is FileKind.DOCX
    )
    assert (
        sniff(zip_of({"_rels/.rels": b"x", "xl/workbook.xml": b"y", "[Content_Types].xml": b"z"}))
        is FileKind.XLSX
    )
    with pytest.raises(DisallowedFileType):
        sniff(zip_of({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"x"}))


def test_sniff_plain_zip_and_new_image_kinds() -> None:
    # Any archive that is not an office package is a ZIP: its members are cleaned one by one, under the
    # zip-bomb limits of ``archives`` (a bomb is sealed there, never expanded: test_attachments_cleaners).
    bomb = zip_of({"bomb.txt": bytes(20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    assert sniff(bomb[:65536]) is FileKind.ZIP
    with pytest.raises(DisallowedFileType):  # two office kinds at once: neither
        sniff(zip_of({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"x", "xl/x.xml": b"y"}))
    assert sniff(b"II*\x00\x08\x00\x00\x00" + bytes(32)) is FileKind.TIFF
    assert sniff(b"MM\x00*\x00\x00\x00\x08" + bytes(32)) is FileKind.TIFF
    for svg in (
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b'<?xml version="1.0"?>\n<!-- Created with Inkscape -->\n'
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n<svg\n width="1">',
    ):
        assert sniff(svg, complete=True) is FileKind.SVG
    assert sniff(_package(b"application/vnd.oasis.opendocument.graphics")) is FileKind.ODG
    import tarfile

    for tar_format in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tar_format) as archive:
            archive.addfile(tarfile.TarInfo("a.txt"), io.BytesIO(b""))
        assert sniff(buf.getvalue(), complete=True) is FileKind.TAR
    text = ("x" * 257 + "ustar and more plain text " * 20).encode()  # "ustar" where a header has it
    assert sniff(text, complete=True) is FileKind.TEXT_UTF8
    with pytest.raises(DisallowedFileType):  # EPUB: chapters are HTML (see cleaners)
        sniff(_package(b"application/epub+zip"))


def _package(mimetype: bytes) -> bytes:
    """An ODF or EPUB package: the ``mimetype`` part first and stored."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("mimetype", mimetype, zipfile.ZIP_STORED)
        archive.writestr("content.xml", b"x", zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@pytest.mark.parametrize("step", [1, 7, 1000, 10**9])
async def test_jpeg_gps_and_comment_removed(step: int) -> None:
    original = jpeg_with_gps(size=(64, 48), make=CANARY, comment=CANARY)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    out, removed, _ = await sanitize(FileKind.JPEG, original, step=step)
    assert CANARY.encode() not in out
    image = Image.open(io.BytesIO(out))
    image.load()
    assert image.size == (64, 48)
    assert not image.getexif().get_ifd(0x8825)
    assert len(image.getexif()) == 0
    assert "jpeg:APP1/Exif=1" in removed and "jpeg:COM=1" in removed
    assert all(CANARY not in name for name in removed)


async def test_jpeg_trailer_dropped_and_truncation_rejected() -> None:
    original = jpeg_with_gps(size=(64, 48), make=CANARY, comment=CANARY)
    out, removed, _ = await sanitize(FileKind.JPEG, original + CANARY.encode())
    assert CANARY.encode() not in out and any(r.startswith("jpeg:trailing-data=") for r in removed)
    with pytest.raises(MalformedFile):
        await sanitize(FileKind.JPEG, original[: len(original) // 2])


async def test_progressive_jpeg_round_trips() -> None:
    buf = io.BytesIO()
    Image.effect_noise((128, 128), 50).convert("RGB").save(buf, "JPEG", progressive=True, exif=Image.Exif())
    out, _, _ = await sanitize(FileKind.JPEG, buf.getvalue(), step=333)
    assert Image.open(io.BytesIO(out)).tobytes() == Image.open(buf).tobytes()


@pytest.mark.parametrize("step", [1, 5, 1000])
async def test_png_text_chunks_removed(step: int) -> None:
    original = png_with_text()
    out, removed, _ = await sanitize(FileKind.PNG, original, step=step)
    assert CANARY.encode() not in out
    image = Image.open(io.BytesIO(out))
    assert image.text == {} and image.convert("RGBA").getpixel((0, 0)) == (1, 2, 3, 4)
    assert removed == ["png:ancillary-chunk=2"]  # a fixed label and a count: chunk ids come from the file


@pytest.mark.parametrize("step", [3, 4096, 10**9])
async def test_mp3_id3_removed(step: int) -> None:
    original = mp3_with_tags()
    out, removed, _ = await sanitize(FileKind.MP3, original, step=step)
    assert CANARY.encode() not in out
    assert out == b"\xff\xfb\x90\x00" + bytes(413) + (b"\xff\xfb\x90\x00" + bytes(413)) * 49
    assert removed == ["id3v2=1", "id3v1=1"]


async def test_large_mp3_streams_through_tail() -> None:
    frames = 2000
    out, _, _ = await sanitize(FileKind.MP3, mp3_with_tags(frames), step=65536)
    assert len(out) == 417 * frames


async def test_wav_list_info_replaced_by_junk() -> None:
    pcm = bytes(1000)
    info = b"INFOIART" + struct.pack("<I", len(CANARY) + 2) + CANARY.encode() + b"\0\0"
    chunks = (
        b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", 1000)
    )
    chunks += pcm + b"LIST" + struct.pack("<I", len(info)) + info
    wav = b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks
    out, removed, _ = await sanitize(FileKind.WAV, wav, step=7)
    assert CANARY.encode() not in out and len(out) == len(wav) and removed == ["wav:LIST=1"]
    import wave

    with wave.open(io.BytesIO(out)) as reader:
        assert reader.readframes(1000) == pcm


async def test_text_validated_through_whole_stream() -> None:
    text = ("某某法院执行局法官收受红包。" * 5000).encode()
    out, removed, _ = await sanitize(FileKind.TEXT_UTF8, text, step=1001)
    assert out == text and removed == []
    with pytest.raises(MalformedFile):
        await sanitize(FileKind.TEXT_UTF8, text + b"\x00")
    with pytest.raises(MalformedFile):
        await sanitize(FileKind.TEXT_UTF8, text + b"\xff\xfe")


async def test_gif_comment_removed() -> None:
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF", comment=CANARY.encode())
    assert CANARY.encode() in buf.getvalue()
    out, removed, _ = await sanitize(FileKind.GIF, buf.getvalue())
    assert CANARY.encode() not in out and "gif:comment=1" in removed
    Image.open(io.BytesIO(out)).load()


async def test_webp_exif_removed() -> None:
    exif = Image.Exif()
    exif[0x010F] = CANARY
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 9, 9)).save(buf, "WEBP", exif=exif, lossless=True)
    assert sniff(buf.getvalue()) is FileKind.WEBP and CANARY.encode() in buf.getvalue()
    out, removed, _ = await sanitize(FileKind.WEBP, buf.getvalue(), step=5)
    assert CANARY.encode() not in out and "webp:EXIF=1" in removed
    image = Image.open(io.BytesIO(out))
    assert image.getpixel((0, 0)) == (9, 9, 9) and len(image.getexif()) == 0
