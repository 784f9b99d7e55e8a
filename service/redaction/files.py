"""Covering regions of a file for real: pure functions from bytes and rectangles to new bytes.

- Images: the pixels under each rectangle are filled opaque black with Pillow and the picture is re-encoded
  from its pixels alone (a fresh image: no EXIF, XMP, ICC profile, comments or text chunks survive).
  JPEG stays JPEG; the other kinds become PNG (GIF frames and WebP animation are flattened to the first
  frame: what staff saw and marked).
- PDF pages: each rectangle becomes a redaction that PyMuPDF applies, which removes the text, vector
  graphics and image pixels under it from the page's content and fills it black; the document's info
  dictionary and XMP metadata are emptied and the file rewritten without unused objects, so nothing
  removed survives as an orphan object.

Coordinates: images in pixels, PDF pages in points (1/72 inch), both from the top-left corner of the
page as shown (a rotated page as a viewer shows it upright); pages count from 1. A rectangle outside the
page is refused, never clipped.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, UnidentifiedImageError

from service.platform.errors import Invalid

IMAGE_KINDS = ("image/jpeg", "image/png", "image/webp", "image/gif")
PDF_KIND = "application/pdf"
MAX_REGIONS = 200


@dataclass(frozen=True)
class Region:
    page: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Covered:
    data: bytes
    kind: str


def _outside(index: int) -> Invalid:
    return Invalid(
        f"第 {index} 个区域超出页面范围",
        message_en=f"region {index} lies outside its page",
    )


def _check_shape(regions: list[Region]) -> None:
    if not regions:
        raise Invalid("请至少标出一个区域", message_en="mark at least one region")
    if len(regions) > MAX_REGIONS:
        raise Invalid(f"区域不能超过 {MAX_REGIONS} 个", message_en=f"at most {MAX_REGIONS} regions")
    for index, r in enumerate(regions, start=1):
        if r.width <= 0 or r.height <= 0 or r.x < 0 or r.y < 0 or r.page < 1:
            raise Invalid(
                f"第 {index} 个区域的位置或大小无效",
                message_en=f"region {index}: page >= 1, x and y >= 0, width and height > 0",
            )


def cover(data: bytes, kind: str, regions: list[Region]) -> Covered:
    """The file with every region covered; refuses a kind it cannot cover and a region off its page."""
    _check_shape(regions)
    if kind in IMAGE_KINDS:
        return _cover_image(data, kind, regions)
    if kind == PDF_KIND:
        return Covered(_redact_pdf(data, regions), PDF_KIND)
    raise Invalid(
        "只能对图片（JPEG、PNG、WebP、GIF）和 PDF 标出遮盖区域",
        message_en="regions can be covered only in images (JPEG, PNG, WebP, GIF) and PDF files",
    )


def _cover_image(data: bytes, kind: str, regions: list[Region]) -> Covered:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(0)
            picture = opened.convert("RGBA" if opened.mode in ("RGBA", "LA", "PA", "P") else "RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise Invalid("图片无法打开", message_en="the image cannot be read") from None
    width, height = picture.size
    for index, r in enumerate(regions, start=1):
        if r.page != 1 or r.x + r.width > width or r.y + r.height > height:
            raise _outside(index)
    draw = ImageDraw.Draw(picture)
    for r in regions:
        # Pixel edges: round outwards, so a fractional rectangle never leaves a sliver uncovered.
        left, top = math.floor(r.x), math.floor(r.y)
        right, bottom = math.ceil(r.x + r.width) - 1, math.ceil(r.y + r.height) - 1
        draw.rectangle(
            (left, top, right, bottom), fill=(0, 0, 0, 255) if picture.mode == "RGBA" else (0, 0, 0)
        )
    fresh = Image.frombytes(picture.mode, picture.size, picture.tobytes())  # pixels only: no info dict
    out = io.BytesIO()
    if kind == "image/jpeg":
        fresh.convert("RGB").save(out, format="JPEG", quality=92, subsampling=0)  # 4:4:4: crisp edges
        return Covered(out.getvalue(), "image/jpeg")
    fresh.save(out, format="PNG")
    return Covered(out.getvalue(), "image/png")


def _redact_pdf(data: bytes, regions: list[Region]) -> bytes:
    import pymupdf  # imported here: only redaction of PDF pages needs it

    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except (pymupdf.FileDataError, RuntimeError, ValueError):
        raise Invalid("PDF 文件无法打开", message_en="the PDF cannot be read") from None
    with document:
        if document.needs_pass:
            raise Invalid("PDF 文件已加密，无法遮盖", message_en="the PDF is encrypted")
        by_page: dict[int, list[pymupdf.Rect]] = {}
        for index, r in enumerate(regions, start=1):
            if r.page > document.page_count:
                raise _outside(index)
            bounds = document[r.page - 1].rect
            if r.x + r.width > bounds.width or r.y + r.height > bounds.height:
                raise _outside(index)
            by_page.setdefault(r.page - 1, []).append(pymupdf.Rect(r.x, r.y, r.x + r.width, r.y + r.height))
        for number, rects in by_page.items():
            page = document[number]
            for rect in rects:  # as shown -> the page's own (unrotated) coordinates
                page.add_redact_annot(rect * page.derotation_matrix, fill=(0, 0, 0))
            page.apply_redactions()
        document.set_metadata({})
        document.del_xml_metadata()
        return document.tobytes(garbage=4, deflate=True, clean=True)
