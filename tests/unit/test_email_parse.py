"""The mail parser against our corpus (tests/data/email/corpus) and the conformance mail from elsewhere."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from service.mail.parse import (
    IDENTITY_KEYS,
    ParsedMail,
    html_to_text,
    parse_message,
    sanitize_filename,
)
from tests.helpers import REPO_ROOT
from tests.helpers.conformance import conformance_file, conformance_files, conformance_params
from tests.helpers.pace import cpu_pace

CORPUS = REPO_ROOT / "tests" / "data" / "email" / "corpus"
KINDS = {"report", "auto_reply", "bounce", "spam", "unparseable"}

CORPUS_CASES = sorted(CORPUS.glob("*.eml"))
CONFORMANCE_NAMES = conformance_params()


def _identity_values(parsed: ParsedMail) -> list[str]:
    return [value for values in parsed.identity.values() for value in values]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS_CASES) >= 30
    for case in CORPUS_CASES:
        assert case.with_suffix(".json").is_file(), case.name


@pytest.mark.parametrize("case", CORPUS_CASES, ids=lambda path: path.stem)
def test_corpus_message(case: Path) -> None:
    expected = json.loads(case.with_suffix(".json").read_text(encoding="utf-8"))
    parsed = parse_message(case.read_bytes())

    assert parsed.kind == expected["kind"], parsed.kind_reason
    if "subject" in expected:
        assert parsed.subject == expected["subject"]
    if "body" in expected:
        assert parsed.body == expected["body"]
    for snippet in expected.get("subject_contains", []):
        assert snippet in parsed.subject
    for snippet in expected.get("body_contains", []):
        assert snippet in parsed.body
        assert snippet in parsed.text
    for snippet in expected.get("body_excludes", []):
        assert snippet not in parsed.text
    if "attachments" in expected:
        assert len(parsed.attachments) == len(expected["attachments"])
        for got, want in zip(parsed.attachments, expected["attachments"], strict=True):
            assert got.filename == want["filename"]
            if "content_type" in want:
                assert got.content_type == want["content_type"]
            if "inline" in want:
                assert got.inline is want["inline"]
            if "size" in want:
                assert len(got.data) == want["size"]
            if "data_startswith" in want:
                assert got.data.startswith(want["data_startswith"].encode())
    for key, values in expected.get("identity", {}).items():
        for value in values:
            assert value in parsed.identity.get(key, []), (key, value, parsed.identity.get(key))
    everything = "\n".join(_identity_values(parsed))
    for value in expected.get("identity_contains", []):
        assert value in everything
    for key in expected.get("identity_absent", []):
        assert key not in parsed.identity
    for note in expected.get("lossy_contains", []):
        assert note in parsed.lossy
    for note in expected.get("lossy_excludes", []):
        assert note not in parsed.lossy
    if "message_id" in expected:
        assert parsed.message_id == expected["message_id"]


def _assert_identity_not_in_text(case: Path) -> None:
    parsed = parse_message(case.read_bytes())
    if parsed.kind != "report":
        return
    for key in ("from_address", "reply_to", "sender", "return_path"):
        for value in parsed.identity.get(key, []):
            if "@" in value:
                assert value not in parsed.text, key
    for line in parsed.identity.get("signature", []) + parsed.identity.get("quoted", []):
        assert line not in parsed.text.split("\n")


@pytest.mark.parametrize("case", CORPUS_CASES, ids=lambda path: path.name)
def test_identity_never_leaks_into_report_text(case: Path) -> None:
    _assert_identity_not_in_text(case)


@pytest.mark.parametrize("name", CONFORMANCE_NAMES)
def test_identity_never_leaks_into_report_text_of_conformance_mail(name: str) -> None:
    _assert_identity_not_in_text(conformance_file(name))


def test_conformance_folder_is_present() -> None:
    assert len(conformance_files()) >= 15


@pytest.mark.parametrize("name", CONFORMANCE_NAMES)
def test_conformance_message_parses_quickly_to_a_kind(name: str) -> None:
    raw = conformance_file(name).read_bytes()
    started = time.monotonic()
    parsed = parse_message(raw)
    assert time.monotonic() - started < cpu_pace().limit(2.0)  # 2 s on the reference machine
    assert parsed.kind in KINDS
    assert set(parsed.identity) <= set(IDENTITY_KEYS)
    assert len(parsed.content_hash) == 64
    for note in parsed.lossy:
        assert note.isascii() and "@" not in note


def test_outlook_binary_is_unparseable() -> None:
    assert parse_message(conformance_file("mail_outlook_1.eml").read_bytes()).kind == "unparseable"


def test_gtube_is_spam_and_dsn_is_bounce() -> None:
    assert parse_message(conformance_file("mail_test_16.eml").read_bytes()).kind == "spam"
    assert parse_message(conformance_file("mail_malformed_2.eml").read_bytes()).kind == "bounce"


def test_received_ips_go_to_identity_not_text() -> None:
    parsed = parse_message(conformance_file("mail_test_9.eml").read_bytes())
    identity = "\n".join(_identity_values(parsed))
    for ip in ("218.15.33.11", "223.152.177.168"):
        assert ip in identity
        assert ip not in parsed.text


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 1000,
        b"\r\n\r\n\r\n",
        b"Subject: x",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all",
        b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n',
        b'Content-Type: text/plain; charset="punycode"\r\n\r\n\xff\xfe',
        b'Content-Type: text/plain; charset="zlib_codec"\r\n\r\nabc',
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Transfer-Encoding: base64\r\n\r\n====!!!!====",
        b"Subject: =?utf-8?B?####?= =?x?Q?=ZZ?= =?utf-8?B??=\r\n\r\n",
        b'From: "unterminated <a@b\r\n\r\n',
        b"From: " + b"(" * 5000 + b"\r\n\r\n",
        b"Subject: " + b"=?utf-8?B?5L2g?=" * 3000 + b"\r\n\r\n",
        b"Content-Type: text/html\r\n\r\n" + b"<div>" * 20000 + b"x",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"--a\r\nContent-Type: message/rfc822\r\n\r\n" * 300,
        b"Content-Type: multipart/mixed; " + b"boundary=x; " * 2000 + b"\r\n\r\n--x\r\n\r\n",
        bytes(range(256)) * 64,
    ],
)
def test_hostile_input_never_raises_or_hangs(raw: bytes) -> None:
    started = time.monotonic()
    parsed = parse_message(raw)
    assert time.monotonic() - started < cpu_pace().limit(2.0)  # 2 s on the reference machine
    assert parsed.kind in KINDS


def test_report_text_is_subject_plus_body() -> None:
    parsed = parse_message(b"Subject: title\r\nContent-Type: text/plain\r\n\r\nbody\r\n")
    assert parsed.text == "title\n\nbody"


def test_same_message_same_hash() -> None:
    raw = (CORPUS / "01-utf8-plain.eml").read_bytes()
    assert parse_message(raw).content_hash == parse_message(raw).content_hash
    assert parse_message(raw).content_hash != parse_message(raw + b" ").content_hash


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system32\\evil.dll", "evil.dll"),
        ("..", "attachment-1.bin"),
        ("a\x00b\x1fc.txt", "a_b_c.txt"),
        ("nul", "_nul"),
        ("x" * 400 + ".pdf", "x" * 146 + ".pdf"),
        (None, "attachment-1.bin"),
    ],
)
def test_sanitize_filename(name: str | None, expected: str) -> None:
    assert sanitize_filename(name, "application/octet-stream", 1) == expected


def test_html_to_text_drops_active_content() -> None:
    text = html_to_text('<p onclick="x()">a<script>bad()</script><img src="http://x/y">b</p><p>c</p>')
    assert text == "ab\n\nc"


def test_message_id_digest_normalises_and_hides_the_id() -> None:
    one = parse_message(b"Message-ID: <ABC@host.example>\r\n\r\nx")
    two = parse_message(b"Message-ID:   <abc@HOST.example> \r\n\r\ny")
    assert one.message_id_digest == two.message_id_digest
    assert one.message_id_digest is not None and "host" not in one.message_id_digest
    assert parse_message(b"Subject: none\r\n\r\nx").message_id_digest is None
