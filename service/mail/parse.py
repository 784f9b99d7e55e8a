"""Turn one raw mail message into a report text, attachments and the submitter's identity.

Pure functions, no I/O. Invariants the rest of the channel relies on:

* `parse_message` never raises and never hangs: input size, MIME nesting depth, part count, header and text
  lengths are all bounded, and every decoding step degrades to a guess plus a lossy note instead of failing.
* Everything that identifies the sender (addresses, display names, quoted or forwarded header lines,
  signature blocks, trace headers with IPs or logins) goes into `identity` and is removed from `subject`
  and `body`; the caller encrypts `identity` with the identity key.
* Lossy notes are fixed English phrases chosen here; they never echo anything taken from the message
  (not even a charset label), so they are safe to store and show in plaintext.
* Attachment file names are sanitised to a bare name: never a path, never control or bidi characters.
* HTML is converted with a real parser; nothing in it is executed or fetched.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.message
import email.parser
import email.policy
import email.utils
import hashlib
import mimetypes
import quopri
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from selectolax.lexbor import LexborHTMLParser

MailKind = Literal["report", "auto_reply", "bounce", "spam", "unparseable"]

MAX_RAW_BYTES = 48 * 1024 * 1024
MAX_DEPTH = 12
MAX_PARTS = 200
MAX_BOUNDARY_DECLARATIONS = 256
MAX_HTML_BYTES = 4 * 1024 * 1024
MAX_TEXT_CHARS = 500_000
MAX_SUBJECT_CHARS = 1_000
MAX_HEADER_CHARS = 8_192
MAX_IDENTITY_VALUES = 200
MAX_FILENAME_CHARS = 150

# Identity keys, in the order they are filled.
IDENTITY_KEYS = (
    "from_address",
    "from_name",
    "reply_to",
    "sender",
    "return_path",
    "recipients",
    "resent",
    "organization",
    "trace",
    "origin",
    "forwarded",
    "quoted",
    "signature",
    "vcard",
)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool


@dataclass(frozen=True, slots=True)
class ParsedMail:
    kind: MailKind
    subject: str
    body: str
    attachments: tuple[Attachment, ...]
    identity: dict[str, list[str]]
    message_id: str | None
    content_hash: str
    lossy: tuple[str, ...]
    # Why the kind was chosen: a fixed English phrase, e.g. "Auto-Submitted header"; empty for reports.
    kind_reason: str = ""

    @property
    def message_id_digest(self) -> str | None:
        """SHA-256 of the Message-ID (angle brackets and case normalised), for deduplication without
        storing the Message-ID itself, which often names the sender's host or address."""
        if not self.message_id:
            return None
        normalized = self.message_id.strip().strip("<>").strip().lower()
        return hashlib.sha256(normalized.encode("utf-8", "replace")).hexdigest()

    @property
    def text(self) -> str:
        """The report text: subject plus body."""
        return "\n\n".join(piece for piece in (self.subject, self.body) if piece)


# --------------------------------------------------------------------------------------------------
# Charsets

_GB_LABELS = frozenset(
    {
        "gb2312",
        "gbk",
        "gb18030",
        "cp936",
        "ms936",
        "windows-936",
        "x-gbk",
        "gb_2312-80",
        "gb_2312",
        "gb-2312",
        "euc-cn",
        "euccn",
        "x-euc-cn",
        "csgb2312",
        "csgbk",
        "chinese",
        "iso-ir-58",
        "x-gb18030",
        "gb18030-2000",
        "gb18030-2005",
        "hz-gb-2312-x",
    }
)
_BIG5_LABELS = frozenset(
    {
        "big5",
        "big-5",
        "cn-big5",
        "csbig5",
        "x-x-big5",
        "x-big5",
        "big5-hkscs",
        "big5hkscs",
        "cp950",
        "ms950",
        "windows-950",
    }
)
# Python codecs that are not mail charsets: slow, surprising, or decoding escape sequences.
_REFUSED_CODECS = frozenset(
    {
        "idna",
        "punycode",
        "unicode-escape",
        "raw-unicode-escape",
        "undefined",
        "mbcs",
        "oem",
        "unicode_escape",
        "raw_unicode_escape",
    }
)
_GUESS_ORDER = ("utf-8", "gb18030", "cp950")


def _codec_chain(label: str | None) -> tuple[list[str], bool]:
    """Codecs to try for a declared charset label, and whether the label was recognised."""
    if not label:
        return ["ascii", *_GUESS_ORDER], True
    name = label.strip().strip("\"'").lower().split("*", 1)[0]
    if name in _GB_LABELS:
        return ["gb18030"], True
    if name in _BIG5_LABELS:
        return ["cp950", "big5hkscs"], True
    if name in {"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us"}:
        return ["ascii", *_GUESS_ORDER, "cp1252", "latin-1"], True
    if name in {"utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"}:
        return ["utf-8"], True
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return list(_GUESS_ORDER), False
    if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return list(_GUESS_ORDER), False
    return [info.name], True


def decode_bytes(data: bytes, label: str | None, notes: list[str]) -> str:
    """Decode text bytes with a declared charset label, falling back to guesses. Never raises."""
    chain, known = _codec_chain(label)
    if not known:
        notes.append("unknown charset; text decoded by guess")
    # UTF-8 in a part labelled (or defaulting to) ASCII is what 8-bit clients send, not a mismatch.
    expected = (
        set(chain[:1])
        | ({"utf-8"} if chain[0] == "ascii" else set())
        | set(chain if chain[0] == "cp950" else ())
    )
    for codec in [*chain, *(c for c in _GUESS_ORDER if c not in chain)]:
        try:
            text = data.decode(codec)
        except Exception:  # noqa: S112 - UnicodeDecodeError, or a codec misbehaving on odd input: next guess
            continue
        if known and codec not in expected:
            notes.append("text did not match its declared charset; decoded by guess")
        return text
    notes.append("undecodable bytes replaced")
    try:
        return data.decode("utf-8" if chain[0] == "ascii" else chain[0], errors="replace")
    except Exception:
        return data.decode("utf-8", errors="replace")


def _fix_header_str(value: str, notes: list[str]) -> str:
    """compat32 hands 8-bit header bytes back as surrogate escapes; decode them properly (SMTPUTF8)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("ascii", "surrogateescape")
    for codec in _GUESS_ORDER:
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    notes.append("undecodable bytes in a header replaced")
    return raw.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------------
# RFC 2047 encoded words

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]")


def _decode_base64_lenient(data: bytes, notes: list[str]) -> bytes:
    """Base64 as real clients send it: junk characters, missing padding, several padded blocks."""
    compact = data.translate(None, b" \t\r\n")
    if len(compact) % 4 == 0:
        # Fast path for well-formed base64, by far the common case (a large attachment spends most of its
        # parsing time here otherwise). Strict mode refuses junk and data after padding: those take the
        # repairing path below, which gives the same bytes for well-formed input.
        try:
            return binascii.a2b_base64(compact, strict_mode=True)
        except binascii.Error:
            pass
    cleaned = _BASE64_JUNK.sub(b"", compact)
    broken = cleaned != compact
    decoded = bytearray()
    segments = [segment for segment in re.split(rb"=+", cleaned) if segment]
    for index, segment in enumerate(segments):
        remainder = len(segment) % 4
        if remainder == 1:
            segment, broken = segment[:-1], True
        elif remainder and index == len(segments) - 1 and not cleaned.endswith(b"="):
            broken = True
        try:
            decoded += base64.b64decode(segment + b"=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            broken = True
    if broken:
        notes.append("broken base64 repaired")
    return bytes(decoded)


def _decode_q(text: str) -> bytes:
    raw = text.replace("_", " ").encode("ascii", "surrogateescape")
    return quopri.decodestring(raw)


def decode_rfc2047(value: str, notes: list[str]) -> str:
    """Decode encoded words, joining adjacent words of one charset before decoding them so that a
    multi-byte character split between two words comes out whole."""
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset, notes))
        pending = bytearray()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if between and (pending_charset is None or between.strip()):
            flush()
            out.append(between)
        charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
        charset = charset.split("*", 1)[0].lower()
        word_notes: list[str] = []
        if encoding == "b":
            chunk = _decode_base64_lenient(payload.encode("ascii", "surrogateescape"), word_notes)
        else:
            chunk = _decode_q(payload)
        notes.extend(word_notes)
        if pending_charset is not None and _codec_chain(charset) != _codec_chain(pending_charset):
            flush()
        pending_charset = charset
        pending.extend(chunk)
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")


def decode_header_value(value: str, notes: list[str]) -> str:
    value = _FOLD.sub("", value[: MAX_HEADER_CHARS * 2])
    return _clean_inline(decode_rfc2047(_fix_header_str(value, notes), notes))[:MAX_HEADER_CHARS]


# --------------------------------------------------------------------------------------------------
# Text hygiene

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BIDI = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _clean_inline(text: str) -> str:
    """One-line value: no controls, no newlines, collapsed whitespace."""
    text = _CONTROL.sub("", text.replace("\t", " ").replace("\r", " ").replace("\n", " "))
    return re.sub(r" {2,}", " ", text).strip()


def _clean_block(text: str, notes: list[str]) -> str:
    if "\x00" in text:
        notes.append("NUL bytes removed")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# --------------------------------------------------------------------------------------------------
# HTML

_DROPPED_ELEMENTS = [
    "script",
    "style",
    "noscript",
    "template",
    "head",
    "title",
    "meta",
    "link",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "img",
    "picture",
    "video",
    "audio",
    "source",
    "canvas",
    "form",
    "input",
    "button",
    "select",
    "textarea",
    "base",
]
_BLOCK_ELEMENTS = (
    "p,div,section,article,header,footer,aside,nav,main,blockquote,pre,ul,ol,li,dl,dt,dd,table,thead,tbody,"
    "tfoot,tr,h1,h2,h3,h4,h5,h6,hr,address,center,figure,figcaption,fieldset,caption"
)
_NEWLINE_MARK = "\ue000"
_CELL_MARK = "\ue001"


def html_to_text(html: str) -> str:
    """Readable text from HTML with lexbor. Scripts, styles, handlers and images are dropped; nothing is
    fetched (lexbor only parses). Block elements and <br> become line breaks."""
    html = html.replace(_NEWLINE_MARK, "").replace(_CELL_MARK, "")
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return ""
    root.strip_tags(_DROPPED_ELEMENTS)
    for node in root.css("br"):
        node.insert_before(_NEWLINE_MARK)
    for node in root.css("td,th"):
        node.insert_after(_CELL_MARK)
    for node in root.css(_BLOCK_ELEMENTS):
        node.insert_before(_NEWLINE_MARK)
        node.insert_after(_NEWLINE_MARK)
    text = root.text(deep=True, separator="") or ""
    text = re.sub(r"[ \t\r\n\f\u00a0]+", " ", text)
    text = text.replace(_CELL_MARK, " ").replace(_NEWLINE_MARK, "\n")
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --------------------------------------------------------------------------------------------------
# Quoted headers and signatures in the body

_QUOTED_HEADER = re.compile(
    r"^\s*(?:>\s*)*\**\s*(?:from|to|cc|bcc|reply-to|sender|envelope-to|"
    r"发件人|發件人|收件人|抄送|抄送人|密送|寄件者|寄件人|收件者|副本|密件副本|回复至|"
    r"von|mittente|destinatario|expéditeur|destinataire|remitente)\s*\**\s*[:：]",
    re.IGNORECASE,
)
# Short labels in other languages ("Da:", "A:", "De:", "An:") count only when the line carries an address.
_QUOTED_HEADER_SHORT = re.compile(r"^\s*(?:>\s*)*\**\s*(?:da|a|de|an|para|à|per|ccn|cco)\s*\**\s*:.*@", re.I)
_ATTRIBUTION = re.compile(r"(?:wrote|writes|a écrit|schrieb|escribió|写道|寫道)\s*[:：]\s*$", re.I)
_QUOTE_START = re.compile(
    r"^\s*(?:>|-{2,}\s*(?:original message|forwarded message|原始邮件|原始郵件|转发邮件|轉寄郵件)|"
    r"_{10,}\s*$|-{5,}\s*原始)",
    re.IGNORECASE,
)
_SIG_DELIMITER = re.compile(r"^(?:-- ?|——|—— ?|__)$")
_PHONE = re.compile(r"(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}|0\d{2,3}[\s-]?\d{7,8}|\+\d[\d\s-]{7,16}\d")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CONTACT_LABEL = re.compile(
    r"^\s*(?:举报人|實名|实名|姓名|名字|署名|联系人|聯絡人|联系方式|聯絡方式|联系电话|電話|电话|手机|手機|"
    r"座机|传真|傳真|地址|住址|家住|通讯地址|邮箱|郵箱|电子邮箱|微信|qq|身份证号?|身份證|单位|工作单位|"
    r"name|tel|phone|mobile|mob|cell|fax|address|addr|e-?mail|wechat|web)(?![a-z])\s*[:：]?",
    re.IGNORECASE,
)
# The most common surnames: a bare "surname + one or two characters" line in a contact paragraph is a name.
_SURNAMES = (
    "王李张張刘劉陈陳杨楊黄黃赵趙吴吳周徐孙孫马馬朱胡郭何高林罗羅郑鄭梁谢謝宋唐许許韩韓冯馮邓鄧曹彭曾肖萧蕭田董"
    "袁潘于蒋蔣蔡余杜叶葉程苏蘇魏吕呂丁任沈姚卢盧姜崔钟鍾谭譚陆陸汪范金石廖贾賈夏韦韋付方白邹鄒孟熊秦邱江尹"
    "薛闫閆段雷侯龙龍史陶黎贺賀顾顧毛郝龚龔邵万萬钱錢严嚴覃武戴莫孔向汤湯常温溫康施文牛樊葛邢安齐齊易乔喬伍庞龐"
    "颜顏倪庄莊聂聶章鲁魯岳翟殷詹申欧歐耿关關兰蘭焦俞左柳甘祝包宁寧尚符舒阮柯纪紀梅童凌毕畢单單季裴霍涂塗成苗谷"
    "盛曲翁冉骆駱蓝藍路游辛靳管柴蒙鲍鮑华華喻祁蒲房滕屈饶饒解牟艾尤阳陽时時穆农農司卓古吉缪繆简簡车車项項连連芦蘆"
    "麦麥褚娄婁窦竇戚岑景党宫宮费費卜冷晏席卫衛米柏宗瞿桂全佟应應臧闵閔苟邬鄔边邊卞姬师師和仇栾欒隋商刁沙荣榮巫寇"
    "桑郎甄丛叢仲虞敖巩鞏明佘池查麻苑迟遲邝鄺"
)
_NAME_ONLY = re.compile(
    rf"^(?:(?:欧阳|歐陽|司马|司馬|上官|诸葛|諸葛|东方|東方|皇甫|令狐|慕容|尉迟|尉遲|公孙|公孫|[{_SURNAMES}])"
    r"[\u4e00-\u9fff]{1,2}|[A-Z][a-z]+(?: [A-Z][a-z]*\.?){0,3})$"
)
_MAX_SIGNATURE_LINES = 10


def _split_identity_lines(text: str, identity: dict[str, list[str]]) -> str:
    """Remove quoted-header and attribution lines, then the signature block, from body text."""
    kept: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if len(stripped) <= 600 and (
            _QUOTED_HEADER.match(stripped)
            or _QUOTED_HEADER_SHORT.match(stripped)
            or (_ATTRIBUTION.search(stripped) and len(stripped) < 300)
        ):
            _add(identity, "quoted", re.sub(r"^[>\s]+", "", stripped))
            continue
        kept.append(line)
    return "\n".join(_remove_signature(kept, identity))


def _is_contact_line(line: str) -> bool:
    stripped = line.strip().lstrip(">").strip()
    if not stripped or len(stripped) > 80:
        return False
    if _CONTACT_LABEL.match(stripped) and (
        re.match(r"^\s*[^\s:：]{1,12}\s*[:：]", stripped)
        or _PHONE.search(stripped)
        or _ADDRESS.search(stripped)
    ):
        return True
    if not (_PHONE.search(stripped) or _ADDRESS.search(stripped)):
        return False
    bare = _PHONE.sub("", _ADDRESS.sub("", stripped)).strip(" ,，;；/|()（）:：.。-—")
    return not bare or bool(_NAME_ONLY.match(bare) or _CONTACT_LABEL.fullmatch(bare))


def _remove_signature(lines: list[str], identity: dict[str, list[str]]) -> list[str]:
    # The sender's own text ends where a quoted reply or a forwarded section begins.
    end = len(lines)
    for index, line in enumerate(lines):
        if _QUOTE_START.match(line):
            end = index
            break
    own = lines[:end]
    # An explicit delimiter ("-- ") starts a signature of at most a few lines.
    for index in range(len(own) - 1, max(-1, len(own) - _MAX_SIGNATURE_LINES - 2), -1):
        if _SIG_DELIMITER.match(own[index].strip()):
            signature = [line.strip() for line in own[index + 1 :] if line.strip()]
            if len(signature) <= _MAX_SIGNATURE_LINES:
                for line in signature:
                    _add(identity, "signature", line)
                return own[:index] + lines[end:]
            break
    # Otherwise: the last paragraph is a signature when it carries contact details.
    last = len(own)
    while last > 0 and not own[last - 1].strip():
        last -= 1
    first = last
    while first > 0 and own[first - 1].strip() and last - first < _MAX_SIGNATURE_LINES:
        first -= 1
    paragraph = own[first:last]
    if paragraph and any(_is_contact_line(line) for line in paragraph):
        removed: list[int] = []
        for offset, line in enumerate(paragraph):
            stripped = line.strip()
            if _is_contact_line(line) or _NAME_ONLY.match(stripped.lstrip("—-～~ ")):
                removed.append(offset)
        for offset in removed:
            _add(identity, "signature", paragraph[offset].strip())
        kept_paragraph = [line for offset, line in enumerate(paragraph) if offset not in removed]
        return own[:first] + kept_paragraph + own[last:] + lines[end:]
    return lines


# --------------------------------------------------------------------------------------------------
# Headers and identity

_TRACE_HEADER = re.compile(
    r"^(?:x-)?(?:received|arc-[a-z-]+|authentication-results|received-spf|dkim-signature|"
    r"x-google-dkim-signature|domainkey-signature|x-gm-message-state|x-ms-exchange-organization-[a-z-]*ip[a-z-]*)$",
    re.IGNORECASE,
)
_ORIGIN_HEADER = re.compile(
    r"^x-(?:[a-z0-9-]*)(?:originat|sender|source|client|remote|real-?ip|forwarded|auth|login|user|account|"
    r"envelope|from|peer|-ip\b|ip$|qq-ssf|qq-xmailinfo|mail-from|ms-exchange-crosstenant-originalattributedtenant)",
    re.IGNORECASE,
)
_ADDRESS_HEADERS = {
    "reply-to": "reply_to",
    "mail-reply-to": "reply_to",
    "mail-followup-to": "reply_to",
    "disposition-notification-to": "reply_to",
    "return-receipt-to": "reply_to",
    "x-confirm-reading-to": "reply_to",
    "errors-to": "reply_to",
    "sender": "sender",
    "return-path": "return_path",
    "to": "recipients",
    "cc": "recipients",
    "bcc": "recipients",
    "delivered-to": "recipients",
    "x-original-to": "recipients",
    "envelope-to": "recipients",
    "resent-from": "resent",
    "resent-sender": "resent",
    "resent-to": "resent",
    "resent-cc": "resent",
}


def _add(identity: dict[str, list[str]], key: str, value: str) -> None:
    value = _clean_inline(value)[:MAX_HEADER_CHARS]
    if not value or value == "<>":
        return
    values = identity.setdefault(key, [])
    if value not in values and len(values) < MAX_IDENTITY_VALUES:
        values.append(value)


def _addresses(value: str, notes: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs from a raw header value; names decoded after splitting so an
    encoded comma in a name does not split it."""
    value = _FOLD.sub("", _fix_header_str(value[:MAX_HEADER_CHARS], notes))
    try:
        pairs = email.utils.getaddresses([value])[:50]
    except Exception:  # the address parser is old; a failure only loses structure, not data
        pairs = []
    result = []
    for name, address in pairs:
        name = _clean_inline(decode_rfc2047(name, notes)).strip("\"' ")
        address = _clean_inline(decode_rfc2047(address, notes)).strip("<> ")
        if name or address:
            result.append((name, address))
    if not result and value.strip():
        result.append(("", decode_header_value(value, notes)))
    return result


def _collect_identity(
    headers: Iterable[tuple[str, str]], identity: dict[str, list[str]], notes: list[str], *, forwarded: bool
) -> None:
    for raw_name, raw_value in headers:
        name = raw_name.strip().lower()
        if forwarded:
            if name in {"from", "sender", "reply-to", "to", "cc", "bcc", "return-path"}:
                for display, address in _addresses(raw_value, notes):
                    _add(identity, "forwarded", display)
                    _add(identity, "forwarded", address)
            elif _TRACE_HEADER.match(name) or _ORIGIN_HEADER.match(name):
                _add(identity, "forwarded", f"{raw_name}: {decode_header_value(raw_value, notes)}")
            continue
        if name == "from":
            for display, address in _addresses(raw_value, notes):
                _add(identity, "from_name", display)
                _add(identity, "from_address", address)
        elif name in _ADDRESS_HEADERS:
            for display, address in _addresses(raw_value, notes):
                _add(identity, _ADDRESS_HEADERS[name], display)
                _add(identity, _ADDRESS_HEADERS[name], address)
        elif name == "organization":
            _add(identity, "organization", decode_header_value(raw_value, notes))
        elif _TRACE_HEADER.match(name):
            _add(identity, "trace", f"{raw_name}: {decode_header_value(raw_value, notes)}")
        elif _ORIGIN_HEADER.match(name):
            _add(identity, "origin", f"{raw_name}: {decode_header_value(raw_value, notes)}")


def _header(message: email.message.Message, name: str, notes: list[str]) -> str:
    for key, value in message.raw_items():
        if key.strip().lower() == name:
            return decode_header_value(value, notes)
    return ""


def _headers(message: email.message.Message, name: str) -> list[str]:
    return [value for key, value in message.raw_items() if key.strip().lower() == name]


# --------------------------------------------------------------------------------------------------
# File names

_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]')
_WINDOWS_RESERVED = re.compile(r"^(?:con|prn|aux|nul|com\d|lpt\d)(?:\..*)?$", re.IGNORECASE)


def sanitize_filename(name: str | None, content_type: str, index: int) -> str:
    """A bare, displayable file name: the last path component, no controls or bidi tricks, bounded."""
    name = name or ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", _BIDI.sub("", name))
    name = _UNSAFE_FILENAME.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS]
    if not name:
        extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
        name = f"attachment-{index}{extension}"
    return name


# --------------------------------------------------------------------------------------------------
# MIME walk

_SIGNATURE_TYPES = {
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
}
_VCARD_TYPES = {"text/vcard", "text/x-vcard", "text/directory"}
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_BOUNDARY_LINE = re.compile(rb"^--([^\s\r\n]{6,70}?)(?:--)?[ \t]*\r?$", re.MULTILINE)
_PART_START = re.compile(rb"^--([^\s\r\n]{6,70}?)[ \t]*\r?\n(?=content-)", re.MULTILINE | re.IGNORECASE)


@dataclass
class _Walk:
    notes: list[str] = field(default_factory=list)
    identity: dict[str, list[str]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: int = 0
    delivery_status: bool = False
    disposition_notification: bool = False
    report_type: str = ""


def _content_type(part: email.message.Message) -> str:
    try:
        ctype = part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"
    return ctype if _CONTENT_TYPE.match(ctype) else "application/octet-stream"


def _param(part: email.message.Message, name: str, header: str, notes: list[str]) -> str | None:
    try:
        value = part.get_param(name, header=header)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, latin-1 text of the raw bytes)
        charset, _language, text = value
        text = decode_bytes(text.encode("latin-1", "replace"), charset or "utf-8", notes)
    else:
        text = email.utils.unquote(value)
    return decode_header_value(text, notes)


def _raw_payload(part: email.message.Message) -> bytes:
    """The part's body bytes exactly as received. Message.get_payload() "helpfully" decodes 8-bit bodies
    with the declared charset and replaces what does not fit, so read the stored payload instead."""
    payload = getattr(part, "_payload", None)
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        return b""
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return payload.encode("utf-8", "surrogateescape")


def _payload_bytes(part: email.message.Message, notes: list[str]) -> bytes:
    if isinstance(part.get_payload(), list):
        return b""
    encoding = str(part.get("content-transfer-encoding", "") or "").strip().lower()
    if encoding == "base64":
        return _decode_base64_lenient(_raw_payload(part), notes)
    if encoding in {"quoted-printable", "quoted_printable", "qp"}:
        return quopri.decodestring(_raw_payload(part))
    if encoding in {"x-uuencode", "uuencode", "x-uue", "uue"}:
        data = _raw_payload(part)
        try:
            return b"".join(
                binascii.a2b_uu(line)
                for line in data.splitlines()[1:]
                if line and not line.startswith(b"end")
            )
        except (binascii.Error, ValueError):
            notes.append("invalid uuencoded part kept undecoded")
            return data
    # 7bit, 8bit, binary or unknown: the bytes as they came (compat32 returns them undecoded).
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else _raw_payload(part)


def _normalize_headers(part: email.message.Message, notes: list[str]) -> None:
    """Replace 8-bit header values (surrogate escapes) by decoded text so parameters such as file names
    come out whole instead of as replacement characters."""
    broken = {
        key.lower()
        for key, value in part.raw_items()
        if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value)
    }
    for name in broken:
        values = [(key, value) for key, value in part.raw_items() if key.lower() == name]
        del part[name]
        for key, value in values:
            part[key] = _fix_header_str(value, notes) if isinstance(value, str) else str(value)


def _walk(part: email.message.Message, walk: _Walk, depth: int, *, want_text: bool = True) -> None:
    walk.parts += 1
    if walk.parts > MAX_PARTS:
        if "too many MIME parts; the rest were skipped" not in walk.notes:
            walk.notes.append("too many MIME parts; the rest were skipped")
        return
    if depth > MAX_DEPTH:
        walk.notes.append("MIME nesting too deep; inner parts skipped")
        return
    _normalize_headers(part, walk.notes)
    ctype = _content_type(part)
    payload = part.get_payload()

    if ctype.startswith("multipart/"):
        if not isinstance(payload, list):
            recovered = _recover_multipart(part, walk)
            if recovered is not None:
                _walk(recovered, walk, depth + 1, want_text=want_text)
            elif isinstance(payload, str) and payload.strip():
                walk.notes.append("MIME structure broken; body kept as plain text")
                _text_part(part, "text/plain", walk, want_text)
            return
        _multipart(part, ctype, payload, walk, depth, want_text)
        _recover_epilogue(part, walk, depth, want_text)
        return

    if ctype in {"message/rfc822", "message/global"} and isinstance(payload, list) and payload:
        inner = payload[0]
        if isinstance(inner, email.message.Message):
            _forwarded(inner, walk, depth, want_text)
            return
    if ctype in {"message/delivery-status", "message/global-delivery-status"}:
        walk.delivery_status = True
        return
    if ctype in {"message/disposition-notification", "message/global-disposition-notification"}:
        walk.disposition_notification = True
        return
    if ctype in {"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}:
        return  # the headers of our own undelivered mail, inside a bounce
    if ctype in _SIGNATURE_TYPES:
        walk.notes.append("cryptographic signature part removed")
        return

    filename = _param(part, "filename", "content-disposition", walk.notes) or _param(
        part, "name", "content-type", walk.notes
    )
    disposition = str(part.get("content-disposition", "") or "").split(";", 1)[0].strip().lower()
    if ctype in _VCARD_TYPES:
        card = decode_bytes(_payload_bytes(part, walk.notes)[:65536], part.get_content_charset(), walk.notes)
        for line in _clean_block(card, walk.notes).split("\n"):
            _add(walk.identity, "vcard", line)
        return
    is_text = ctype in {"text/plain", "text/html", "text/enriched"} or (
        ctype.startswith("text/") and not filename
    )
    if is_text and disposition != "attachment" and not filename:
        _text_part(part, ctype, walk, want_text)
        return
    if not isinstance(payload, str | bytes):
        payload_bytes = b""
    else:
        payload_bytes = _payload_bytes(part, walk.notes)
    inline = disposition == "inline" or (not disposition and part.get("content-id") is not None)
    walk.attachments.append(
        Attachment(
            filename=sanitize_filename(filename, ctype, len(walk.attachments) + 1),
            content_type=ctype,
            data=payload_bytes,
            inline=inline,
        )
    )


def _multipart(
    part: email.message.Message, ctype: str, children: list, walk: _Walk, depth: int, want_text: bool
) -> None:
    children = [child for child in children if isinstance(child, email.message.Message)]
    if ctype == "multipart/report":
        walk.report_type = (_param(part, "report-type", "content-type", walk.notes) or "").lower()
    if ctype == "multipart/alternative" and children:
        chosen = _choose_alternative(children, walk)
        for child in children:
            _walk(child, walk, depth + 1, want_text=want_text and child is chosen)
        return
    if ctype == "multipart/signed" and children:
        _walk(children[0], walk, depth + 1, want_text=want_text)
        for child in children[1:]:
            if _content_type(child) in _SIGNATURE_TYPES:
                walk.notes.append("cryptographic signature part removed")
            else:
                _walk(child, walk, depth + 1, want_text=False)
        return
    if ctype == "multipart/encrypted":
        walk.notes.append("encrypted content cannot be read; kept as attachments")
        for child in children:
            _walk(child, walk, depth + 1, want_text=False)
        return
    for child in children:
        _walk(child, walk, depth + 1, want_text=want_text)


def _choose_alternative(children: list[email.message.Message], walk: _Walk) -> email.message.Message:
    """Plain text when it has content (it is what the sender's client wrote), else the richest part."""
    for child in children:
        if _content_type(child) == "text/plain" and not child.get_filename():
            probe: list[str] = []
            text = decode_bytes(_payload_bytes(child, probe), child.get_content_charset(), probe)
            if text.strip():
                return child
    for child in reversed(children):
        if _content_type(child) != "text/plain":
            return child
    return children[-1]


def _text_part(part: email.message.Message, ctype: str, walk: _Walk, want_text: bool) -> None:
    if not want_text:
        return
    data = _payload_bytes(part, walk.notes)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    if ctype == "text/html":
        if len(data) > MAX_HTML_BYTES:
            walk.notes.append("oversized HTML body truncated")
            data = data[:MAX_HTML_BYTES]
        html = decode_bytes(data, charset, walk.notes)
        if "\x00" in html:
            walk.notes.append("NUL bytes removed")
            html = html.replace("\x00", "")
        text = html_to_text(html)
        walk.notes.append("HTML body converted to plain text")
    else:
        text = decode_bytes(data, charset, walk.notes)
    text = _clean_block(text, walk.notes)
    if text.strip():
        walk.texts.append(text)


def _forwarded(inner: email.message.Message, walk: _Walk, depth: int, want_text: bool) -> None:
    _collect_identity(inner.raw_items(), walk.identity, walk.notes, forwarded=True)
    subject = _header(inner, "subject", walk.notes)
    before = len(walk.texts)
    _walk(inner, walk, depth + 1, want_text=want_text)
    if want_text:
        texts = walk.texts[before:]
        del walk.texts[before:]
        heading = "---------- Forwarded message ----------"
        if subject:
            heading += f"\nSubject: {subject[:MAX_SUBJECT_CHARS]}"
        walk.texts.append("\n\n".join([heading, *texts]))


def _recover_epilogue(part: email.message.Message, walk: _Walk, depth: int, want_text: bool) -> None:
    """Parts after the closing boundary (a nested multipart reusing its parent's boundary closes the
    parent early): parse them instead of dropping them with the epilogue."""
    epilogue = part.epilogue
    boundary = part.get_boundary()
    if not isinstance(epilogue, str) or not boundary or f"--{boundary}" not in epilogue:
        return
    try:
        data = epilogue.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        data = epilogue.encode("utf-8", "surrogateescape")
    rebuilt = email.message_from_bytes(
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode("utf-8", "replace") + data,
        policy=email.policy.compat32,
    )
    walk.notes.append("parts after the MIME end marker recovered")
    _walk(rebuilt, walk, depth + 1, want_text=want_text)


def _recover_multipart(part: email.message.Message, walk: _Walk) -> email.message.Message | None:
    """A multipart whose declared boundary is missing or wrong: find the boundary actually used."""
    if not isinstance(part.get_payload(), str):
        return None
    data = _raw_payload(part)
    counts: dict[bytes, int] = {}
    for match in _BOUNDARY_LINE.finditer(data[: 1024 * 1024]):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    candidates = [boundary for boundary, count in counts.items() if count >= 2]
    if not candidates:
        # A lone delimiter followed by part headers still marks where a part starts.
        first = _PART_START.search(data[: 1024 * 1024])
        if first is None:
            return None
        candidates = [first.group(1)]
    boundary = max(candidates, key=lambda b: counts.get(b, 0)).decode("ascii", "replace")
    if '"' in boundary:
        return None
    subtype = _content_type(part).split("/", 1)[1]
    rebuilt = (f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n').encode() + data
    walk.notes.append("MIME boundary repaired")
    return email.message_from_bytes(rebuilt, policy=email.policy.compat32)


# --------------------------------------------------------------------------------------------------
# Classification of non-report mail

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ _-]?(?:reply|response|antwort|réponse)|autoreply|auto:|out of (?:the )?office|"
    r"自动回复|自動回覆|自動回復|自动答复|休假中|不在办公室|外出|réponse automatique|abwesenheit|"
    r"respuesta automática|risposta automatica|read:|已读[:：]|已讀[:：])",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|has failed|failed|notification)|returned mail|failure notice|"
    r"mail delivery failed|non[- ]delivery|退信|未送达|未能送达|投递失败|无法投递|發送失敗|传递失败",
    re.IGNORECASE,
)
_GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
_SPAM_SUBJECT = re.compile(r"^\s*(?:\[spam\]|\*{2,3}\s*spam\s*\*{2,3}|\{spam\?*\})", re.IGNORECASE)


def _classify(message: email.message.Message, raw: bytes, walk: _Walk, subject: str) -> tuple[MailKind, str]:
    def header(name: str) -> str:
        return " ".join(_headers(message, name)).strip().lower()

    from_address = " ".join(walk.identity.get("from_address", [])).lower()
    if walk.report_type == "delivery-status" or walk.delivery_status:
        return "bounce", "delivery status report"
    if header("x-failed-recipients"):
        return "bounce", "X-Failed-Recipients header"
    if re.search(r"(?:^|\s)(?:mailer-daemon|postmaster)@", from_address) and _BOUNCE_SUBJECT.search(subject):
        return "bounce", "bounce sender and subject"
    if walk.report_type == "disposition-notification" or walk.disposition_notification:
        return "auto_reply", "read receipt"
    auto_submitted = header("auto-submitted")
    if auto_submitted and auto_submitted != "no":
        return "auto_reply", "Auto-Submitted header"
    for name in ("x-autoreply", "x-autorespond", "x-auto-reply", "x-autogenerated"):
        value = header(name)
        if value and value not in {"no", "false", "0"}:
            return "auto_reply", "auto-reply header"
    precedence = header("precedence")
    if "auto_reply" in precedence or "auto-reply" in precedence:
        return "auto_reply", "Precedence header"
    if _AUTO_SUBJECT.match(subject):
        return "auto_reply", "auto-reply subject"
    null_sender = bool(_headers(message, "return-path")) and not header("return-path").strip("<> ")
    if _BOUNCE_SUBJECT.search(subject) and null_sender:
        return "bounce", "bounce subject with null sender"
    if header("x-spam-flag").startswith("yes") or header("x-spam-status").startswith("yes"):
        return "spam", "spam filter header"
    if header("x-spam").startswith("yes") or _SPAM_SUBJECT.match(subject):
        return "spam", "spam marker"
    if _GTUBE in raw:
        return "spam", "spam test pattern"
    if (
        precedence.split(" ", 1)[0] in {"bulk", "junk", "list"}
        or header("list-unsubscribe")
        or header("list-id")
    ):
        return "spam", "bulk mail headers"
    return "report", ""


# --------------------------------------------------------------------------------------------------
# Entry point

_HEADER_LINE = re.compile(rb"^(?:[\x21-\x39\x3b-\x7e]{1,76}[ \t]*:|From )")


def looks_like_mail(raw: bytes) -> bool:
    """True when the data starts with a header field (or an mbox From_ line): the least a mail message is."""
    return bool(_HEADER_LINE.match(raw.lstrip(b"\r\n")[:200]))


def _binary_share(text: str) -> float:
    sample = text[:8192]
    if not sample:
        return 0.0
    odd = sum(1 for ch in sample if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r"))
    return odd / len(sample)


def _unparseable(raw: bytes, content_hash: str, note: str) -> ParsedMail:
    return ParsedMail(
        kind="unparseable",
        subject="",
        body="",
        attachments=(),
        identity={},
        message_id=None,
        content_hash=content_hash,
        lossy=(note,),
        kind_reason=note,
    )


def parse_message(raw: bytes) -> ParsedMail:
    """Parse one raw message. Never raises; see the module docstring for the invariants."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raw = b""
    raw = bytes(raw)
    content_hash = hashlib.sha256(raw).hexdigest()
    try:
        return _parse(raw, content_hash)
    except Exception:  # last resort: a parser bug must quarantine the mail, not drop it
        return _unparseable(raw, content_hash, "message could not be parsed")


def _parse(raw: bytes, content_hash: str) -> ParsedMail:
    notes: list[str] = []
    if not raw.strip():
        return _unparseable(raw, content_hash, "empty message")
    if not looks_like_mail(raw) and _binary_share(raw[:8192].decode("utf-8", "replace")) > 0.05:
        return _unparseable(raw, content_hash, "not a mail message")
    if len(raw) > MAX_RAW_BYTES:
        notes.append("message truncated to the size limit")
        raw = raw[:MAX_RAW_BYTES]
    structure_ok = raw.lower().count(b"boundary") <= MAX_BOUNDARY_DECLARATIONS
    if not structure_ok:
        notes.append("MIME structure too complex; body kept as plain text")
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not structure_ok:
        headers_only = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            raw, headersonly=True
        )
        del headers_only["content-type"]
        headers_only["Content-Type"] = "text/plain"
        message = headers_only
    if not list(message.raw_items()):
        notes.append("message has no headers")

    walk = _Walk(notes=notes)
    _collect_identity(message.raw_items(), walk.identity, notes, forwarded=False)
    subject = _header(message, "subject", notes)[:MAX_SUBJECT_CHARS]
    message_id = (_header(message, "message-id", notes) or None) if message.raw_items() else None
    if message_id:
        message_id = message_id[:998]
    try:
        _walk(message, walk, 0)
    except RecursionError:
        notes.append("MIME nesting too deep; inner parts skipped")

    body = "\n\n".join(walk.texts)
    if len(body) > MAX_TEXT_CHARS:
        notes.append("body text truncated")
        body = body[:MAX_TEXT_CHARS]
    if not list(message.raw_items()) and _binary_share(body) > 0.1:
        return _unparseable(raw, content_hash, "not a mail message")
    body = _split_identity_lines(body, walk.identity)
    body = _clean_block(body, [])
    subject = _clean_inline(subject)

    kind, reason = _classify(message, raw, walk, subject)
    return ParsedMail(
        kind=kind,
        subject=subject,
        body=body,
        attachments=tuple(walk.attachments),
        identity={key: walk.identity[key] for key in IDENTITY_KEYS if walk.identity.get(key)},
        message_id=message_id,
        content_hash=content_hash,
        lossy=tuple(dict.fromkeys(notes)),
        kind_reason=reason,
    )
