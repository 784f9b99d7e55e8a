"""Personal data in report text: phone numbers, ID and bank card numbers, e-mail, plates, names, addresses.

Numbers are validated (ID check digit and birth date, Luhn, mainland numbering plan) so that case numbers,
amounts and dates are not masked. Names and addresses aim at precision over recall: only the reporter's
self-descriptions ("我叫…", "家住…") and fully-formed street addresses are taken.
Spans refer to the original text; the detector never logs the text or what it found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from service.classification.normalize import fold
from service.classification.results import PersonalDataKind, PersonalDataSpan

MASK_MARKERS: dict[str, str] = {
    "mobile": "［手机号］",
    "landline": "［电话］",
    "id_number": "［身份证号］",
    "bank_card": "［银行卡号］",
    "email": "［邮箱］",
    "plate": "［车牌号］",
    "name": "［姓名］",
    "address": "［地址］",
}

# Ambiguity is resolved by priority: a higher number wins an overlap.
_PRIORITY = {
    "email": 9,
    "id_number": 8,
    "bank_card": 7,
    "mobile": 6,
    "landline": 5,
    "plate": 4,
    "address": 3,
    "name": 2,
}

_CASE_CONTEXT = re.compile(
    r"(案号|编号|单号|订单|流水号|文号|字第|批号|工号|警号|货号|快递号|发票号|账单号|合同号)[^\d]{0,3}$"
)

_MOBILE = re.compile(r"(?<![\d.])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![\d.])")
_LANDLINE = re.compile(r"(?<![\d.])(?:\(0\d{2,3}\)|0\d{2,3})[- ]?[2-9]\d{6,7}(?:-\d{1,4})?(?![\d.])")
_ID = re.compile(r"(?<![0-9a-z])([1-8]\d{5})((?:19|20)\d{2})(\d{2})(\d{2})(\d{3})([\dx])(?![0-9a-z])")
_CARD = re.compile(r"(?<![\d])(\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?)(?![\d])")
_EMAIL = re.compile(
    r"(?<![a-z0-9._%+-])[a-z0-9._%+-]{1,64}@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,10}(?![a-z])"
)
_PLATE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
    r"[a-hj-np-z][·• -]?(?:[a-hj-np-z0-9]{5,6}|[a-hj-np-z0-9]{4}[挂学警港澳])(?![a-z0-9])"
)
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_COMPOUND_SURNAMES = "欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|令狐|夏侯|长孙|宇文|司徒|端木|西门|南宫"
_NAME = (
    r"(?P<name>(?:" + _COMPOUND_SURNAMES + r")[\u4e00-\u9fff]{1,2}|[" + _SURNAMES + r"][\u4e00-\u9fff]{1,2})"
)
_NAME_CUE = re.compile(
    r"(?:我叫|本人叫|本人名叫|我的名字是|我的名字叫|我名叫|举报人[:：]?|实名举报人[:：]?|反映人[:：]?|实名举报[:：]|实名反映[:：]|"
    r"姓名[:：]|联系人[:：]?|署名[:：]?|落款[:：]?)\s*"
    + _NAME
    + r"(?=[，,。.！!；;\s、（(：:0-9]|$|是|的|男|女|今年|电话|手机|身份|住|家|现|联系|现年|年)"
)
_SELF_NAME = re.compile(r"(?:^|[，,。！!\s])本人" + _NAME + r"(?=[，,。\s（(]|男|女)")
# A signature line that opens the report: "王芳，女，…" / "王芳（男）…".
_LEADING_NAME = re.compile(r"^\s*" + _NAME + r"(?=\s*[，,（(]\s*[男女]\s*[，,）)])")
_ADDRESS_CUE = re.compile(
    r"(?:家住在|家住|居住在|住在|住址[:：]?|家庭住址[:：]?|现住址?[:：]?|通讯地址[:：]?|联系地址[:：]?|地址[:：]|居住在|户籍地址?[:：]?)\s*"
    r"(?P<addr>[\u4e00-\u9fff0-9a-z\-#]{4,40})"
)
_ADDRESS_MARK = re.compile(r"(路|街|巷|弄|道|号|栋|幢|单元|室|村|组|小区|花园|苑|公寓|大厦|楼)")
_STREET_ADDRESS = re.compile(
    r"(?:[\u4e00-\u9fff]{2,12}(?:省|市|区|县|镇|乡|街道))*[\u4e00-\u9fff]{1,10}(?:路|街|大道|巷|弄)\d{1,5}号"
    r"(?:(?:\d{1,4}|[一二三四五六七八九十]{1,3})(?:栋|幢|座|号楼))?(?:\d{1,3}单元)?(?:\d{1,5}(?:室|房|号房))?"
)
# The street-address pattern may swallow the words before it ("家住…", "地址…"): trim them off.
_ADDRESS_PREFIX = re.compile(r"^.*?(?:家住在|居住在|家住|住在|住址|地址|现住|户籍地|位于|家在)[:：]?")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"


def id_check_digit_valid(number: str) -> bool:
    number = number.lower()
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for index, ch in enumerate(reversed(number)):
        digit = int(ch)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _valid_birth(year: str, month: str, day: str) -> bool:
    try:
        born = date(int(year), int(month), int(day))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def _in_case_context(text: str, start: int) -> bool:
    return bool(_CASE_CONTEXT.search(text[max(0, start - 8) : start]))


def find_personal_data(text: str) -> list[PersonalDataSpan]:
    # Folding is length-preserving, so positions in ``folded`` are positions in ``text``.
    folded = fold(text)
    found: list[tuple[int, int, PersonalDataKind]] = []
    for m in _EMAIL.finditer(folded):
        found.append((m.start(), m.end(), "email"))
    for m in _ID.finditer(folded):
        if id_check_digit_valid(m.group(0)) and _valid_birth(m.group(2), m.group(3), m.group(4)):
            found.append((m.start(), m.end(), "id_number"))
    for m in _CARD.finditer(folded):
        digits = re.sub(r"[ -]", "", m.group(1))
        if 16 <= len(digits) <= 19 and digits[0] in "3456" and luhn_valid(digits):
            if not _in_case_context(folded, m.start()):
                found.append((m.start(), m.end(), "bank_card"))
    for m in _MOBILE.finditer(folded):
        if not _in_case_context(folded, m.start()):
            found.append((m.start(), m.end(), "mobile"))
    for m in _LANDLINE.finditer(folded):
        if not _in_case_context(folded, m.start()):
            found.append((m.start(), m.end(), "landline"))
    for m in _PLATE.finditer(folded):
        found.append((m.start(), m.end(), "plate"))
    for regex in (_NAME_CUE, _SELF_NAME, _LEADING_NAME):
        for m in regex.finditer(folded):
            found.append((m.start("name"), m.end("name"), "name"))
    for m in _ADDRESS_CUE.finditer(folded):
        addr = m.group("addr")
        if _ADDRESS_MARK.search(addr):
            found.append((m.start("addr"), m.end("addr"), "address"))
    for m in _STREET_ADDRESS.finditer(folded):
        cue = _ADDRESS_PREFIX.match(m.group(0))
        found.append((m.start() + (cue.end() if cue else 0), m.end(), "address"))
    return _resolve_overlaps(found)


def _resolve_overlaps(found: list[tuple[int, int, PersonalDataKind]]) -> list[PersonalDataSpan]:
    chosen: list[tuple[int, int, PersonalDataKind]] = []
    for start, end, kind in sorted(found, key=lambda f: (-_PRIORITY[f[2]], -(f[1] - f[0]), f[0])):
        overlapping = [c for c in chosen if c[0] < end and start < c[1]]
        if not overlapping:
            chosen.append((start, end, kind))
        elif kind == "address" and all(c[2] == "address" for c in overlapping):
            continue
    return [PersonalDataSpan(s, e, k) for s, e, k in sorted(chosen)]


def mask_personal_data(text: str, spans: list[PersonalDataSpan]) -> str:
    """Replace each span with its marker. Overlapping spans are merged under the first one's marker."""
    out: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.end <= cursor:
            continue
        start = max(span.start, cursor)
        out.append(text[cursor:start])
        if start == span.start:
            out.append(MASK_MARKERS.get(span.kind, "［个人信息］"))
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out)


@dataclass(frozen=True)
class MaskedTexts:
    """Reporter-written texts as staff see them, and the originals of those that masking changed (the
    caller seals these with the identity key; they are submitter details)."""

    texts: dict[str, str | None]
    originals: dict[str, str]


def mask_texts(texts: Mapping[str, str | None]) -> MaskedTexts:
    """Mask each reporter-written text by name: the report body, a follow-up, an operator's record, a
    call-back instruction. One rule for every channel and every later addition."""
    masked: dict[str, str | None] = {}
    originals: dict[str, str] = {}
    for name, text in texts.items():
        spans = find_personal_data(text) if text else []
        if spans:
            assert text is not None
            masked[name] = mask_personal_data(text, spans)
            originals[name] = text
        else:
            masked[name] = text
    return MaskedTexts(masked, originals)
