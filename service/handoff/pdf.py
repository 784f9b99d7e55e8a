"""The dossier for reading: a PDF typeset in Chinese with ReportLab.

Font: ReportLab's built-in CID font ``STSong-Light`` (Adobe-GB1, 宋体 — the face official documents use).
It needs no font file on the server and nothing downloaded, keeps the PDF small, and its text is stored as
Unicode (UniGB-UCS2-H), so any reader extracts it exactly. The glyphs are not embedded: the reader's viewer
draws them with its own Song/CJK font (Adobe Reader, Foxit, WPS and poppler-based viewers all carry or map
one). What is signed is the text, not the glyph shapes, so this does not weaken verification.

``invariant=1`` leaves out the creation time and random document id: the same content gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=16, wordWrap="CJK")
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=9, leading=13)
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=18, leading=26, alignment=1, spaceAfter=4)
_SUBTITLE = ParagraphStyle("subtitle", parent=_BODY, fontSize=12, leading=18, alignment=1, spaceAfter=10)
_HEADING = ParagraphStyle("heading", parent=_BODY, fontSize=13, leading=20, spaceBefore=10, spaceAfter=4)


@dataclass(frozen=True)
class MessageBlock:
    heading: str  # direction and time
    text: str


@dataclass(frozen=True)
class DossierDocument:
    """Everything the PDF shows, already in words (labels and values); no identity unless released."""

    registry_number: str
    ledger: Sequence[tuple[str, str]]
    accused: Sequence[tuple[str, str]]
    report: str
    incident: Sequence[tuple[str, str]]
    messages: Sequence[MessageBlock]
    additions: Sequence[MessageBlock]  # a hotline caller's later additions and corrections
    attachments: Sequence[Sequence[str]]  # rows: file, type, size, hash, metadata removed
    history: Sequence[Sequence[str]]  # rows: time, step, status, by, approver
    footer: Sequence[str]
    released_identity: Sequence[tuple[str, str]] = field(default_factory=tuple)


def _p(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _facts(rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(
        [[_p(label, _SMALL), _p(value or "—", _SMALL)] for label, value in rows],
        colWidths=[38 * mm, 132 * mm],
    )
    table.setStyle(_GRID)
    return table


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]) -> Table:
    table = Table(
        [[_p(h, _SMALL) for h in header]] + [[_p(cell, _SMALL) for cell in row] for row in rows],
        colWidths=[w * mm for w in widths],
        repeatRows=1,
    )
    table.setStyle(TableStyle([*_GRID.getCommands(), ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]))
    return table


_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONTNAME", (0, 0), (-1, -1), FONT),
    ]
)


def render_pdf(document: DossierDocument) -> bytes:
    story: list = [
        _p("线索移交材料", _TITLE),
        _p(f"登记编号：{document.registry_number}", _SUBTITLE),
        _p("一、台账信息", _HEADING),
        _facts(document.ledger),
        _p("二、被反映人", _HEADING),
        _facts(document.accused),
        _p("三、反映内容（个人信息已遮蔽）", _HEADING),
        _p(document.report),
    ]
    if document.incident:
        story += [Spacer(1, 4), _facts(document.incident)]
    story.append(_p("四、往来消息", _HEADING))
    if document.messages:
        for message in document.messages:
            story += [_p(message.heading, _SMALL), _p(message.text), Spacer(1, 4)]
    else:
        story.append(_p("无"))
    story.append(_p("五、来电补充与更正", _HEADING))
    if document.additions:
        for addition in document.additions:
            story += [_p(addition.heading, _SMALL), _p(addition.text), Spacer(1, 4)]
    else:
        story.append(_p("无"))
    story.append(_p("六、附件清单（元数据已清除，文件见 files/ 目录）", _HEADING))
    if document.attachments:
        story.append(
            _grid(
                ["文件", "类型", "大小", "哈希值", "已清除的元数据"],
                document.attachments,
                (44, 24, 18, 52, 32),
            )
        )
    else:
        story.append(_p("无"))
    story += [
        _p("七、办理经过", _HEADING),
        _grid(["时间", "步骤", "状态", "经办人", "审批人"], document.history, (34, 30, 38, 34, 34)),
    ]
    if document.released_identity:
        story += [_p("八、经保管人批准披露的身份信息", _HEADING), _facts(document.released_identity)]
    story += [Spacer(1, 10), *(_p(line, _SMALL) for line in document.footer)]

    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"线索移交材料 {document.registry_number}",
        author="Tipline",
        invariant=1,
    ).build(story, onFirstPage=_page_number, onLaterPages=_page_number)
    return buffer.getvalue()


def _page_number(canvas, doc) -> None:  # type: ignore[no-untyped-def]
    canvas.saveState()
    canvas.setFont(FONT, 8)
    canvas.drawCentredString(A4[0] / 2, 10 * mm, f"第 {doc.page} 页")
    canvas.restoreState()
