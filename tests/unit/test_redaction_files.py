"""Covering regions of files and replaying masking markers: pure functions, no database."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from service.classification.results import PersonalDataSpan
from service.platform.errors import Invalid
from service.redaction import files
from service.redaction.service import _marker_positions, _shift, _spans


def _png_with_metadata() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Zhang San")
    info.add_itxt("Comment", "拍摄于城东派出所")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    Image.new("RGBA", (60, 40), (0, 200, 0, 255)).save(out, "PNG", pnginfo=info, icc_profile=icc)
    return out.getvalue()


def test_png_region_is_black_and_no_metadata_survives() -> None:
    data = _png_with_metadata()
    with Image.open(io.BytesIO(data)) as before:
        assert before.info.get("Author") == "Zhang San" and before.info.get("icc_profile")
    covered = files.cover(data, "image/png", [files.Region(1, 5, 5, 10.5, 10)])
    assert covered.kind == "image/png"
    assert b"Zhang San" not in covered.data and "城东".encode() not in covered.data
    with Image.open(io.BytesIO(covered.data)) as after:
        assert not {"Author", "Comment", "icc_profile", "exif"} & set(after.info)
        pixels = after.convert("RGB")
        assert pixels.getpixel((5, 5)) == (0, 0, 0) and pixels.getpixel((15, 14)) == (0, 0, 0)  # rounded out
        assert pixels.getpixel((16, 5)) == (0, 200, 0) and pixels.getpixel((4, 4)) == (0, 200, 0)


def test_gif_becomes_png_and_bad_regions_are_refused() -> None:
    out = io.BytesIO()
    Image.new("P", (30, 30), 3).save(out, "GIF", comment=b"secret comment")
    covered = files.cover(out.getvalue(), "image/gif", [files.Region(1, 0, 0, 30, 30)])
    assert covered.kind == "image/png" and b"secret comment" not in covered.data
    for region in (files.Region(1, 25, 0, 10, 5), files.Region(2, 0, 0, 5, 5), files.Region(1, 0, 0, 0, 5)):
        with pytest.raises(Invalid):
            files.cover(out.getvalue(), "image/gif", [region])
    with pytest.raises(Invalid):
        files.cover(b"hello", "text/plain", [files.Region(1, 0, 0, 1, 1)])
    with pytest.raises(Invalid):
        files.cover(out.getvalue(), "image/gif", [])


def test_spans_are_checked_merged_and_quoted_everywhere() -> None:
    text = "甲乙丙甲乙丁"
    assert _spans(text, [[0, 2], [1, 3]], ["乙丁"]) == [(0, 3), (4, 6)]
    assert _spans(text, [], ["甲乙"]) == [(0, 2), (3, 5)]
    for spans, quotes in (([[0, 7]], []), ([[2, 2]], []), ([], ["戊"]), ([], []), ([[True, 2]], [])):
        with pytest.raises(Invalid):
            _spans(text, spans, quotes)


def test_markers_follow_the_versions() -> None:
    original = "我叫王五，电话13900000001，找李四"
    spans = [PersonalDataSpan(2, 4, "name"), PersonalDataSpan(7, 18, "mobile")]
    masked, positions = _marker_positions(original, spans)
    assert masked == "我叫［姓名］，电话［手机号］，找李四"
    assert [(masked[s:e], i) for s, e, i in positions] == [("［姓名］", 0), ("［手机号］", 1)]
    # Covering "我叫" (2 chars -> a 5-char marker) moves both; covering the name marker removes it.
    moved = _shift(positions, [(0, 2, 5)])
    assert [(s, i) for s, _, i in moved] == [(s + 3, i) for s, _, i in positions]
    assert [i for _, _, i in _shift(positions, [(3, 5, 5)])] == [1]


def test_pdf_region_on_a_rotated_page_removes_the_text_shown_there(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A page rotated 90°: the region is given as a viewer shows the page; pdftotext (an independent reader)
    finds the covered words gone and the others still there."""
    import subprocess

    import pymupdf
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    from tests.helpers.tools import apt, require_executable

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setFont("Helvetica", 14)
    page.drawString(72, 770, "SECRET-ALPHA")
    page.drawString(72, 600, "VISIBLE-OMEGA")
    page.save()
    document = pymupdf.open(stream=out.getvalue(), filetype="pdf")
    document[0].set_rotation(90)
    rotated = document.tobytes()
    # Shown upright the page is 842 x 595 pt; the first line runs down near x = 766-785.
    covered = files.cover(rotated, "application/pdf", [files.Region(1, 760, 60, 30, 130)])
    with pytest.raises(Invalid):
        files.cover(rotated, "application/pdf", [files.Region(1, 700, 500, 30, 130)])  # 630 > 595 tall
    tool = require_executable("pdftotext", apt("poppler-utils"))
    path = tmp_path / "covered.pdf"
    path.write_bytes(covered.data)
    shown = subprocess.run([tool, str(path), "-"], check=True, capture_output=True, text=True)  # noqa: S603
    text = "".join(shown.stdout.split())
    assert "SECRET" not in text and "ALPHA" not in text and "VISIBLE-OMEGA" in text
