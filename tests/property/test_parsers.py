"""Property tests (issue 9): the parsers and normalisers take any input, stay in bounds, and fail only in
their documented way. Bounded example counts keep the suite fast."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.classification.normalize import SEPARATOR, fold, normalize
from service.classification.pii import MASK_MARKERS, find_personal_data, mask_personal_data
from service.intake.receipts import DIGITS, MalformedReceipt, format_receipt, normalise_receipt
from service.mail.parse import MAX_SUBJECT_CHARS, MAX_TEXT_CHARS, parse_message
from service.platform.crypto.envelope import Envelope, EnvelopeError

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIECES = st.sampled_from(
    list("派出所長法官收紅包，。！？ 　ＡＢ１２３abc０-_*（）【】\n\t@.")
    + [
        "我叫王芳，",
        "电话13912345678",
        "11010519491231002X",
        "家住幸福路88号",
        "粤A12345",
        "\u200b",
        "𠀀",
        "é",
    ]
)
TEXT = st.lists(PIECES, max_size=40).map("".join) | st.text(max_size=120)


# --- Text normalisation ---------------------------------------------------------------------------------


@FAST
@given(TEXT)
def test_fold_keeps_length_and_normalise_is_idempotent_and_maps_back(text: str) -> None:
    assert len(fold(text)) == len(text)
    once = normalize(text)
    assert normalize(once.text).text == once.text  # normalising twice changes nothing
    for i in range(len(once.text)):
        original = once.original_index(i)
        assert 0 <= original < len(text)
        if once.text[i] != SEPARATOR:
            assert fold(text[original]) == once.text[i]  # each kept character is the fold of its original
    assert list(once.offsets) == sorted(set(once.offsets))  # order kept, no index twice


# --- Receipt codes ---------------------------------------------------------------------------------------

DIGIT_STRINGS = st.text(alphabet=string.digits, min_size=DIGITS, max_size=DIGITS)
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@FAST
@given(DIGIT_STRINGS, st.sampled_from([" ", "-", "", "  ", "　"]), st.booleans())
def test_receipt_round_trips_however_it_is_typed(code: str, separator: str, fullwidth: bool) -> None:
    typed = format_receipt(code).replace(" ", separator)
    if fullwidth:
        typed = typed.translate(FULLWIDTH)
    assert normalise_receipt(f" {typed} ") == code


@FAST
@given(st.text(max_size=80))
def test_receipt_parsing_returns_25_digits_or_says_malformed(text: str) -> None:
    try:
        code = normalise_receipt(text)
    except MalformedReceipt:
        return
    assert len(code) == DIGITS and code.isascii() and code.isdigit()


# --- Personal data -----------------------------------------------------------------------------------------


@FAST
@given(TEXT)
def test_personal_data_spans_are_in_bounds_and_masking_removes_them(text: str) -> None:
    spans = find_personal_data(text)
    previous_end = 0
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert span.start >= previous_end  # sorted, not overlapping
        previous_end = span.end
    masked = mask_personal_data(text, spans)
    # Exactly the detected spans are gone: what is outside them is kept in order, each span is one marker.
    expected, cursor = [], 0
    for span in spans:
        expected += [text[cursor : span.start], MASK_MARKERS.get(span.kind, "［个人信息］")]
        cursor = span.end
    assert masked == "".join([*expected, text[cursor:]])
    assert mask_personal_data(text, []) == text


# --- MIME ------------------------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "Subject",
        "From",
        "To",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Message-ID",
        "Auto-Submitted",
        "Content-Disposition",
        "MIME-Version",
        "X-Other",
    ]
)
HEADER_VALUES = st.sampled_from(
    [
        "=?utf-8?B?5Li+5oql?=",
        "=?gb2312?Q?=D6=D0?=",
        "=?bogus?X?zz?=",
        'multipart/mixed; boundary="b"',
        "multipart/alternative; boundary=",
        "text/plain; charset=gb18030",
        "text/html; charset=nonsense",
        "base64",
        "quoted-printable",
        "auto-replied",
        'attachment; filename="a.pdf"',
        "<x@y>",
        "",
    ]
) | st.text(max_size=40)
BODY_PIECES = st.sampled_from(
    [
        b"--b\r\n",
        b"--b--\r\n",
        b"Content-Type: text/plain\r\n\r\n",
        b"\xd6\xd0\xce\xc4",
        b"5Li+5oql\r\n",
        b"=E4=B8=BE=\r\n",
        b"<p>hi</p>",
        b"\r\n",
        b"\x00\xff",
        "举报".encode(),
    ]
) | st.binary(max_size=40)


@st.composite
def raw_mail(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("utf-8", "surrogatepass")
    return head + b"\r\n" + b"".join(draw(st.lists(BODY_PIECES, max_size=12)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_mail() | st.binary(max_size=400))
def test_parse_message_never_raises_and_stays_bounded(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert len(parsed.subject) <= MAX_SUBJECT_CHARS
    assert len(parsed.body) <= MAX_TEXT_CHARS
    assert len(parsed.content_hash) == 64
    assert isinstance(parsed.text, str)


# --- Envelopes -------------------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=300) | st.binary(max_size=120).map(lambda b: b"TLE1" + b))
def test_envelope_decoding_raises_only_envelope_error(data: bytes) -> None:
    try:
        Envelope.from_bytes(data)
    except EnvelopeError:
        pass


@FAST
@given(st.data())
def test_a_mangled_real_envelope_raises_only_envelope_error(data: st.DataObject) -> None:
    real = _real_envelope()
    position = data.draw(st.integers(0, len(real) - 1))
    mangled = bytearray(real)
    mangled[position] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(real)))
    for candidate in (bytes(mangled), real[:cut]):
        try:
            Envelope.from_bytes(candidate)
        except EnvelopeError:
            pass


_ENVELOPE: list[bytes] = []


def _real_envelope() -> bytes:
    if not _ENVELOPE:
        from service.platform.crypto.keys import KeyPair, KeyRing

        case, identity = KeyPair.generate("case"), KeyPair.generate("identity")
        ring = KeyRing(case_public=case.public, identity_public=identity.public, private=[case, identity])
        _ENVELOPE.append(ring.seal_case("举报内容".encode(), "clues/x/content"))
    return _ENVELOPE[0]
