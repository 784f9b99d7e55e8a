"""The privacy sweep: distinct canary identities go in through every channel of a real `tipline serve`
process (web form with attachments, JSON API, email over SMTP, hotline call, letter, visit and the three staff
sources), staff and reporter use the features (list, read, download, message, reply, metrics), then the
database, the server log, the file store, the server's temporary directory and the metrics text are scanned
for every canary in UTF-8, UTF-16, JSON-escaped and base64 form: zero hits.

Canaries are submitter details only (names, phones, emails, ID numbers with valid check digits, addresses,
IPs, the uploaded file's name, EXIF fields) and the receipt codes; the accused person's details are not,
since staff see them. Phone-shaped digits inside text are masked by PII detection on purpose."""

from __future__ import annotations

import asyncio
import email.policy
import re
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from service.platform.timeutil import LOCAL
from tests.helpers import files_under, find_canaries, free_port, pg_dump, tipline_server
from tests.helpers.app import auth, cli_env, run_cli
from tests.helpers.conformance import conformance_files
from tests.helpers.media import jpeg_with_gps
from tests.helpers.oracle import findings
from tests.helpers.web import post_report, receipt_from

TIP = "jubao@tipline.local"


def id_number(first17: str) -> str:
    """A mainland resident ID number with a valid GB 11643 check digit."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


ID_API = "11010519491231002X"
assert id_number(ID_API[:17]) == ID_API
ID_VISIT = id_number("44030419880214351")
ID_CONFESSION = id_number("32010619750630471")
ID_LETTER = id_number("51010719920817662")

WEB = {
    "name": "金丝雀网页甲",
    "phone": "13911110001",
    "email": "web.canary.qv@example.org",
    "address": "网页金丝雀路甲号雀鸣小区",
    "ip": "203.0.113.41",
    "agent": "canary-web-agent/7",
    "file_name": "金丝雀上传者_材料",
    "file_text": "金丝雀附件人乙",
    "file_phone": "13911110002",
    "exif_artist": "CanaryPhotographerQ",
}
API = {
    "name": "金丝雀接口丙",
    "phone": "13911110003",
    "email": "api.canary.zk@example.org",
    "address": "接口金丝雀街丙号",
    "id": ID_API,
    "ip": "203.0.113.42",
    "agent": "canary-api-agent/9",
    "reply_phone": "13911110004",
}
MAIL = {
    "sender": "mail.canary.wx@example.cn",
    "display": "金丝雀寄信人丁",
    "reply_to": "mail.replyto.canary@example.net",
    "phone": "13822223334",
    "received_ip": "198.51.100.53",
    "origin_ip": "198.51.100.54",
}
CALL = {"number": "13911110005", "name": "金丝雀来电戊", "callback": "13911110006"}
LETTER = {
    "name": "金丝雀写信己",
    "address": "来信金丝雀巷己号",
    "phone": "0755-83331234",
    "email": "letter.canary.pm@example.com",
    "id": ID_LETTER,
}
VISIT = {"name": "金丝雀来访庚", "id": ID_VISIT, "phone": "13911110007", "address": "来访金丝雀村庚组"}
CONFESSION = {"name": "金丝雀自首辛", "id": ID_CONFESSION, "phone": "13911110008"}
STAFF_TEXT = {
    "name": "金丝雀原举报人壬",
    "phone": "13911110009",
}  # a submitter named in a staff source's text

CANARIES = sorted(
    {v for group in (WEB, API, MAIL, CALL, LETTER, VISIT, CONFESSION, STAFF_TEXT) for v in group.values()}
)
MARKERS = {  # letters only: digits in a marker could be masked as a phone number
    "web": "标记网页渠道",
    "api": "标记接口渠道",
    "email": "标记邮件渠道",
    "call": "标记热线渠道",
    "letter": "标记来信渠道",
    "visit": "标记来访渠道",
    "superior": "标记交办渠道",
    "inspection": "标记自查渠道",
    "confession": "标记自首渠道",
}


def canary_mail() -> bytes:
    return (
        f"Received: from [{MAIL['received_ip']}] (unknown [{MAIL['received_ip']}]) by mx.example.cn\r\n"
        f"X-Originating-IP: [{MAIL['origin_ip']}]\r\n"
        f"From: {MAIL['display']} <{MAIL['sender']}>\r\nReply-To: {MAIL['reply_to']}\r\nTo: {TIP}\r\n"
        "Subject: =?utf-8?b?5Li+5oql?=\r\nMessage-ID: <sweep.canary@example.cn>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{MARKERS['email']}：派出所副所长收受赌场老板好处费，每次检查前通风报信。\r\n\r\n"
        f"--\r\n{MAIL['display']}\r\n手机：{MAIL['phone']}\r\n"
    ).encode()


def staff_token(env: dict[str, str], name: str, role: str) -> str:
    made = run_cli(["staff", "add", "--name", name, "--role", role], env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def receipt_variants(code: str) -> list[str]:
    digits = re.sub(r"\D", "", code)
    return [digits, " ".join(digits[i : i + 5] for i in range(0, len(digits), 5))]


async def feed_every_channel(
    client: httpx.AsyncClient, smtp_port: int, operator: str, supervisor: str
) -> list[str]:
    """Every channel once, with its canaries; returns the receipt codes handed out."""
    receipts: list[str] = []
    web = await post_report(
        client,
        {
            "text": f"{MARKERS['web']}：派出所民警收红包压案不立。我是{WEB['name']}，电话{WEB['phone']}。",
            "identity": "real_name",
            "contact_name": WEB["name"],
            "contact_phone": WEB["phone"],
            "contact_email": WEB["email"],
            "contact_address": WEB["address"],
            "accused_unit": "某某派出所",
        },
        files=[
            ("photo.jpg", jpeg_with_gps(artist=WEB["exif_artist"])),
            (
                f"{WEB['file_name']}.txt",
                f"补充材料：知情人{WEB['file_text']}，电话{WEB['file_phone']}。".encode(),
            ),
        ],
        headers={"X-Forwarded-For": WEB["ip"], "User-Agent": WEB["agent"]},
    )
    assert web.status_code == 200, web.text
    receipts.append(receipt_from(web.text))

    tip = await client.post(
        "/api/v1/tips",
        json={
            "text": f"{MARKERS['api']}：法院执行局法官收钱不执行。我叫{API['name']}，电话{API['phone']}。",
            "anonymous": False,
            "accused": {"name": "钱某", "unit": "某区法院执行局"},
            "submitter": {k: API[k] for k in ("name", "phone", "email", "address")}
            | {"id_number": API["id"]},
        },
        headers={"X-Forwarded-For": API["ip"], "User-Agent": API["agent"]},
    )
    assert tip.status_code == 201, tip.text
    receipts.append(tip.json()["receipt"])

    def send_mail() -> None:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
            smtp.sendmail(MAIL["sender"], [TIP], canary_mail())

    await asyncio.to_thread(send_mail)

    call = await client.post(
        "/api/v1/hotline/calls",
        json={
            "call_started_at": (datetime.now(UTC) - timedelta(minutes=9)).isoformat(),
            "duration_seconds": 420,
            "caller_number": CALL["number"],
            "caller_name": CALL["name"],
            "anonymous": False,
            "callback_allowed": True,
            "callback_number": CALL["callback"],
            "accused": {"name": "赵某", "unit": "某某看守所"},
            "summary": f"{MARKERS['call']}：来电人反映看守所管教民警收钱通风报信。",
        },
        headers=auth(operator),
    )
    assert call.status_code == 201, call.text
    receipts.append(call.json()["receipt"])

    today = datetime.now(LOCAL).date()
    letter = await client.post(
        "/api/v1/letters",
        json={
            "postmark_date": (today - timedelta(days=3)).isoformat(),
            "text": f"{MARKERS['letter']}：区法院法官的儿子专接本院执行案件。写信人{LETTER['name']}。",
            "anonymous": False,
            "writer": {k: LETTER[k] for k in ("name", "address", "phone", "email")}
            | {"id_number": LETTER["id"]},
        },
        headers=auth(operator),
    )
    assert letter.status_code == 201, letter.text
    receipts.append(letter.json()["receipt"])

    visit = await client.post(
        "/api/v1/visits",
        json={
            "visit_date": today.isoformat(),
            "received_by": "接待室张某、李某",
            "text": f"{MARKERS['visit']}：派出所报案不受理，不给回执。",
            "visitor": {k: VISIT[k] for k in ("name", "phone", "address")} | {"id_number": VISIT["id"]},
        },
        headers=auth(operator),
    )
    assert visit.status_code == 201, visit.text
    if visit.json().get("receipt"):
        receipts.append(visit.json()["receipt"])

    sources = [
        {
            "source": "superior_assigned",
            "text": (
                f"{MARKERS['superior']}：原举报人{STAFF_TEXT['name']}（电话{STAFF_TEXT['phone']}）反映减刑违规。"
            ),
            "assigning_body": "市委政法委",
            "document_number": "政法交〔二〇二六〕第七号",
            "received_date": (today - timedelta(days=1)).isoformat(),
            "deadline": (today + timedelta(days=20)).isoformat(),
            "accused": {"name": "孙某", "unit": "某某监狱"},
        },
        {
            "source": "self_inspection",
            "text": f"{MARKERS['inspection']}：自查发现民警违规饮酒，群众{STAFF_TEXT['name']}曾来电反映。",
            "inspection": "第三季度纪律作风自查",
            "recorded_by": "督察室王某",
            "accused": {"unit": "某某派出所"},
        },
        {
            "source": "voluntary_confession",
            "text": f"{MARKERS['confession']}：本人主动交代曾接受当事人宴请并收受购物卡。",
            "officer": {
                "name": CONFESSION["name"],
                "unit": "某某区法院",
                "position": "审判员",
                "id_number": CONFESSION["id"],
                "phone": CONFESSION["phone"],
            },
            "confession_date": today.isoformat(),
            "received_by": "纪检组李某",
        },
    ]
    for body in sources:
        made = await client.post("/api/v1/staff-sources", json=body, headers=auth(supervisor))
        assert made.status_code == 201, made.text
    return receipts


async def use_the_features(client: httpx.AsyncClient, supervisor: str, api_receipt: str) -> str:
    """Staff list, read and download; a message to the API reporter, who reads it and replies; metrics."""
    listed = await client.get("/api/v1/clues", params={"limit": 200}, headers=auth(supervisor))
    assert listed.status_code == 200, listed.text
    texts: dict[str, str] = {}
    for item in listed.json()["items"]:
        detail = await client.get(f"/api/v1/clues/{item['id']}", headers=auth(supervisor))
        assert detail.status_code == 200, detail.text
        texts[item["id"]] = detail.json()["text"]
        files = await client.get(f"/api/v1/clues/{item['id']}/attachments", headers=auth(supervisor))
        assert files.status_code == 200, files.text
        for attachment in files.json():
            got = await client.get(f"/api/v1/attachments/{attachment['id']}", headers=auth(supervisor))
            assert got.status_code == 200, got.text
            assert WEB["exif_artist"].encode() not in got.content
    for channel, marker in MARKERS.items():
        assert any(marker in text for text in texts.values()), channel
    api_clue = next(cid for cid, text in texts.items() if MARKERS["api"] in text)

    question = "请补充具体时间和地点。"
    sent = await client.post(
        f"/api/v1/clues/{api_clue}/messages", json={"text": question}, headers=auth(supervisor)
    )
    assert sent.status_code == 201, sent.text
    headers = {"X-Receipt-Code": api_receipt, "X-Forwarded-For": API["ip"], "User-Agent": API["agent"]}
    status = await client.post("/api/v1/receipt/status", headers=headers)
    assert status.status_code == 200, status.text
    assert any(m["text"] == question for m in status.json()["messages"])
    reply = await client.post(
        "/api/v1/receipt/messages",
        json={"text": f"去年腊月在他办公室。我换了号码{API['reply_phone']}。"},
        headers=headers,
    )
    assert reply.status_code == 201, reply.text
    thread = await client.get(f"/api/v1/clues/{api_clue}/messages", headers=auth(supervisor))
    assert thread.status_code == 200 and len(thread.json()) == 2

    metrics = await client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    return metrics.text


def start_env(tmp_path: Path, database_url: str) -> tuple[dict[str, str], str, str]:
    """A migrated database, an operator and a supervisor; the server's TMPDIR and attachment scratch
    directory (where cleaners hold plaintext) inside ``tmp_path`` so the scan sees both."""
    data_dir = tmp_path / "data"
    for folder in (data_dir, tmp_path / "server-tmp", tmp_path / "scratch"):
        folder.mkdir()
    env = cli_env(data_dir, database_url)
    upgraded = run_cli(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    operator = staff_token(env, "sweep-operator", "operator")
    supervisor = staff_token(env, "sweep-supervisor", "supervisor")
    env["TMPDIR"] = str(tmp_path / "server-tmp")
    env["TIPLINE_ATTACHMENT_SCRATCH_DIR"] = str(tmp_path / "scratch")
    return env, operator, supervisor


def scan(
    tmp_path: Path, backend: str, database_url: str, secrets_: list[str], metrics: str
) -> dict[str, list[str]]:
    """Every canary form in the database and file store, the server log, its temporary and scratch
    directories (file contents and names) and the metrics text."""
    log_path = tmp_path / "server.log"
    temp_dirs = (tmp_path / "server-tmp", tmp_path / "scratch")
    logs = log_path.read_bytes()
    assert b"Uvicorn running" in logs  # the capture works
    stored_files = [
        p for p in files_under(tmp_path) if p != log_path and not any(d in p.parents for d in temp_dirs)
    ]
    assert any(p.parent.parent.name == "blobs" for p in stored_files)  # the file store was used
    stored = b"".join(p.read_bytes() for p in stored_files)
    if backend == "postgresql":
        stored += pg_dump(database_url)
    else:
        assert (tmp_path / "own.db").exists()
    assert b"sweep-supervisor" in stored  # the scan sees the database (staff names are plain)
    temp = b"".join(p.read_bytes() for p in files_under(*temp_dirs))
    names = "\n".join(str(p.relative_to(d)) for d in temp_dirs for p in d.rglob("*")).encode()
    return {
        "database and file store": find_canaries(stored, secrets_),
        "server log": find_canaries(logs, secrets_),
        "temporary directories": find_canaries(temp + names, secrets_),
        "metrics": find_canaries(metrics.encode(), secrets_),
    }


@pytest.mark.slow
async def test_canaries_through_every_channel_leave_no_trace(backend, tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    env, operator, supervisor = start_env(tmp_path, fresh_database_url)
    smtp_port = free_port()
    with tipline_server(env, tmp_path / "server.log", "--smtp-port", str(smtp_port)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            receipts = await feed_every_channel(client, smtp_port, operator, supervisor)
            metrics = await use_the_features(client, supervisor, receipts[1])

    secrets_ = CANARIES + [v for code in receipts for v in receipt_variants(code)]
    leaks = scan(tmp_path, backend, fresh_database_url, secrets_, metrics)
    assert leaks == {k: [] for k in leaks}, leaks
    assert not any((tmp_path / "scratch").iterdir())  # every cleaner's plaintext directory was removed


# --- The conformance corpus (mat2's dirty files, written by others) through the real channels -------------

CORPUS = "metadata/mat2"
# Identifying values the corpus's authors planted (read from the files with exiftool and unzip): none may
# reach the database, a log, a temporary directory or a staff download. Case matters: both spellings.
CORPUS_CANARIES = [
    "jvoisin", "julien voisin", "Julien Voisin", "Alex Marchant", "Jane Doe", "Example Ltd", "Kovid Goyal",
    "000741709798", "OLYMPUS IMAGING", "be careful!", "Thank you for using MAT", "Zomg, a comment",
    "4a1a79c8-404e-4d38-9580-5bc081036e61",
]  # fmt: skip
KIND_SUFFIX = {"application/pdf": ".pdf", "image/heic": ".heic", "image/jpeg": ".jpg", "image/png": ".png"}
CHANNELS = ("web", "mail", "letter")


def corpus_tag(index: int) -> str:
    """Letters only (digits in a report text could be masked as a phone number)."""
    return "".join("abcdefghij"[int(d)] for d in f"{index:02d}")


def corpus_name(channel: str, index: int, path: Path) -> str:
    """The uploaded file name: a canary (names identify; staff see neutral names only)."""
    return f"金丝雀语料{channel}{corpus_tag(index)}{path.suffix}"


def corpus_mail(index: int, path: Path) -> bytes:
    message = EmailMessage()
    message["From"] = f"corpus.{corpus_tag(index)}@example.cn"
    message["To"] = TIP
    message["Subject"] = "举报材料"
    message["Message-ID"] = f"<corpus.{corpus_tag(index)}@example.cn>"
    message.set_content(f"语料mail件{corpus_tag(index)}：派出所民警收受好处费，材料见附件。")
    message.add_attachment(
        path.read_bytes(),
        maintype="application",
        subtype="octet-stream",
        filename=corpus_name("mail", index, path),
    )
    return message.as_bytes(policy=email.policy.SMTP)  # CRLF: smtplib sends bytes as they are


def kind_suffix(kind: str) -> str:
    if "opendocument" in kind:
        return ".odt"
    if "officedocument" in kind:
        return ".docx"
    return KIND_SUFFIX.get(kind, ".bin")


async def feed_corpus(
    client: httpx.AsyncClient, smtp_port: int, operator: str, files: list[Path]
) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """Each corpus file through the web form, as a mail attachment over SMTP and as a scanned letter page.
    Returns the outcomes decided at upload ("refused" with the reason checked) and the letter pages'
    attachment ids -> file name."""
    outcome: dict[tuple[str, str], str] = {}
    for index, path in enumerate(files):
        web = await post_report(
            client,
            {"text": f"语料web件{corpus_tag(index)}：派出所民警收受好处费，材料见附件。"},
            files=[(corpus_name("web", index, path), path.read_bytes())],
        )
        assert web.status_code in (200, 422), (path.name, web.status_code)
        if web.status_code == 422:  # the form is shown again with the reason: the kind is not accepted
            assert "文件类型不允许上传" in web.text, path.name
            outcome[("web", path.name)] = "refused"

    def send_mail() -> None:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as smtp:
            for index, path in enumerate(files):
                smtp.sendmail(f"corpus.{corpus_tag(index)}@example.cn", [TIP], corpus_mail(index, path))

    await asyncio.to_thread(send_mail)

    today = datetime.now(LOCAL).date()
    letter = await client.post(
        "/api/v1/letters",
        json={"postmark_date": today.isoformat(), "text": "语料letter件：来信附扫描件，反映派出所民警收钱。"},
        headers=auth(operator),
    )
    assert letter.status_code == 201, letter.text
    pages: dict[str, str] = {}
    for path in files:
        page = await client.post(
            f"/api/v1/letters/{letter.json()['clue_id']}/pages",
            content=path.read_bytes(),
            headers=auth(operator),
        )
        assert page.status_code in (201, 422), (path.name, page.status_code, page.text)
        if page.status_code == 422:
            assert page.json()["error"]["message"], path.name  # refused with a reason
            outcome[("letter", path.name)] = "refused"
        else:
            pages[page.json()["id"]] = path.name
    return outcome, pages


async def judge_downloads(
    client: httpx.AsyncClient, supervisor: str, files: list[Path], pages: dict[str, str], canaries: list[str]
) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Every attachment staff can list, downloaded and judged by the oracle; sealed ones must say why."""
    by_tag = {corpus_tag(i): path.name for i, path in enumerate(files)}
    tag = re.compile(r"语料(web|mail|letter)件([a-j]*)")
    outcome: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    cursor = None
    while True:
        params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        listed = await client.get("/api/v1/clues", params=params, headers=auth(supervisor))
        assert listed.status_code == 200, listed.text
        for item in listed.json()["items"]:
            detail = await client.get(f"/api/v1/clues/{item['id']}", headers=auth(supervisor))
            assert detail.status_code == 200, detail.text
            found = tag.search(detail.json()["text"])
            if found is None:
                continue
            channel = found[1]
            attachments = await client.get(
                f"/api/v1/clues/{item['id']}/attachments", headers=auth(supervisor)
            )
            assert attachments.status_code == 200, attachments.text
            for attachment in attachments.json():
                name = pages[attachment["id"]] if channel == "letter" else by_tag[found[2]]
                assert "金丝雀" not in attachment["name"], attachment["name"]  # a neutral name only
                got = await client.get(f"/api/v1/attachments/{attachment['id']}", headers=auth(supervisor))
                if attachment["sealed_reason"]:
                    assert attachment["sealed_reason_text"] and got.status_code == 409, (
                        name,
                        got.status_code,
                    )
                    outcome[(channel, name)] = f"sealed:{attachment['sealed_reason']}"
                    continue
                assert got.status_code == 200, (name, got.status_code)
                # A plain-text file is all content (dirty.css's "author : jvoisin" comment is text the
                # reporter sent, kept for staff like a sentence in a letter): metadata checks, no canaries.
                planted = () if attachment["kind"].startswith("text/") else tuple(canaries)
                left = findings(got.content, suffix=kind_suffix(attachment["kind"]), canaries=planted)
                if left:
                    problems.append(f"{channel} {name}: {left}")
                outcome[(channel, name)] = "cleaned"
            if channel == "mail" and not attachments.json():
                outcome[(channel, by_tag[found[2]])] = "refused"  # left out; the mail record says so
        cursor = listed.json().get("next_cursor")
        if not cursor:
            return outcome, problems


@pytest.mark.slow
async def test_conformance_corpus_through_the_channels_is_cleaned_or_sealed(  # type: ignore[no-untyped-def]
    backend, tmp_path, fresh_database_url
) -> None:
    """mat2's dirty files (another project's, see ../shared/conformance/README.md) enter through the web
    form, SMTP and a letter's scanned pages of a real server; each is refused with a reason, sealed with a
    reason, or downloadable and clean by exiftool and the byte search; nothing else stays behind."""
    files = [p for p in conformance_files("*", CORPUS) if p.name != "LICENSE"]
    env, operator, supervisor = start_env(tmp_path, fresh_database_url)
    smtp_port = free_port()
    names = [corpus_name(channel, i, path) for channel in CHANNELS for i, path in enumerate(files)]
    with tipline_server(env, tmp_path / "server.log", "--smtp-port", str(smtp_port)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
            refused, pages = await feed_corpus(client, smtp_port, operator, files)
            outcome, problems = await judge_downloads(
                client, supervisor, files, pages, CORPUS_CANARIES + names
            )
            metrics = (await client.get("/metrics")).text
    outcome |= refused
    assert problems == []
    for path in files:  # every file has one outcome on every channel, and the channels agree
        web, mail_, page = (outcome.get((channel, path.name)) for channel in CHANNELS)
        assert web is not None and mail_ is not None and page is not None, (path.name, web, mail_, page)
        assert web == mail_, (path.name, web, mail_)
        assert page in ("refused", web), (path.name, web, page)  # pages take images and PDF only
    cleaned = {
        name for (channel, name), result in outcome.items() if channel == "web" and result == "cleaned"
    }
    assert {
        "dirty.docx",
        "dirty.pdf",
        "dirty.heic",
        "dirty.mp4",
        "dirty.jpg",
        "dirty.png",
        "dirty.odt",
        "dirty.tiff",  # redrawn by mat2
        "dirty.svg",
        "dirty.odg",  # the ODF pre-pass, then mat2
    } <= cleaned
    assert outcome[("web", "weird.svg")] == "sealed:cleaner-failed"  # librsvg cannot draw it: sealed
    assert outcome[("web", "dirty.epub")] == "refused"
    assert {name for (channel, name), r in outcome.items() if channel == "letter" and r == "cleaned"} >= {
        "dirty.jpg", "dirty.png", "dirty.pdf"
    }  # fmt: skip
    leaks = scan(tmp_path, backend, fresh_database_url, CORPUS_CANARIES + names, metrics)
    assert leaks == {k: [] for k in leaks}, leaks
    assert not any((tmp_path / "scratch").iterdir())  # every cleaner's plaintext directory was removed
