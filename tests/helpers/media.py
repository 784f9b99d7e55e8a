"""Files with metadata for tests: a JPEG with GPS (the one such helper), a PDF with an author, PNG, WAV."""

from __future__ import annotations

import io
import wave

from PIL import Image


def wav_bytes(seconds: float = 0.2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * int(8000 * seconds))
    return out.getvalue()


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 30), (250, 250, 240)).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(
    *,
    size: tuple[int, int] = (32, 32),
    make: str | None = "PhoneMaker",
    artist: str | None = None,
    comment: str | None = None,
) -> bytes:
    """A JPEG whose EXIF holds GPS coordinates (Beijing), a camera maker and optionally an artist, and
    optionally a COM comment segment: everything the attachment pipeline must strip."""
    image = Image.new("RGB", size, (200, 10, 10))
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make  # Make
    if artist is not None:
        exif[0x013B] = artist  # Artist
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 47.0)}  # GPS IFD
    out = io.BytesIO()
    extra = {} if comment is None else {"comment": comment.encode()}
    image.save(out, "JPEG", exif=exif.tobytes(), **extra)
    return out.getvalue()


def pdf_with_author() -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Author"] = "Zhang San"
    pdf.docinfo["/Producer"] = "SecretTool"
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
