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
import re
import smtplib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from service.platform.timeutil import LOCAL
from tests.helpers import files_under, find_canaries, free_port, pg_dump, tipline_server
from tests.helpers.app import auth, cli_env, run_cli
from tests.helpers.media import jpeg_with_gps
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


@pytest.mark.slow
async def test_canaries_through_every_channel_leave_no_trace(backend, tmp_path, fresh_database_url) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    temp_dir = tmp_path / "server-tmp"
    data_dir.mkdir()
    temp_dir.mkdir()
    env = cli_env(data_dir, fresh_database_url)
    upgraded = run_cli(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    operator = staff_token(env, "sweep-operator", "operator")
    supervisor = staff_token(env, "sweep-supervisor", "supervisor")
    env["TMPDIR"] = str(temp_dir)
    smtp_port = free_port()
    log_path = tmp_path / "server.log"
    with tipline_server(env, log_path, "--smtp-port", str(smtp_port)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            receipts = await feed_every_channel(client, smtp_port, operator, supervisor)
            metrics = await use_the_features(client, supervisor, receipts[1])

    secrets_ = CANARIES + [v for code in receipts for v in receipt_variants(code)]
    logs = log_path.read_bytes()
    assert b"Uvicorn running" in logs  # the capture works
    stored_files = [p for p in files_under(tmp_path) if p != log_path and temp_dir not in p.parents]
    assert any(p.parent.parent.name == "blobs" for p in stored_files)  # the file store was used
    stored = b"".join(p.read_bytes() for p in stored_files)
    if backend == "postgresql":
        stored += pg_dump(fresh_database_url)
    else:
        assert (tmp_path / "own.db").exists()
    assert b"sweep-supervisor" in stored  # the scan sees the database (staff names are plain)
    temp = b"".join(p.read_bytes() for p in files_under(temp_dir))
    names = "\n".join(str(p.relative_to(temp_dir)) for p in temp_dir.rglob("*")).encode()
    leaks = {
        "database and file store": find_canaries(stored, secrets_),
        "server log": find_canaries(logs, secrets_),
        "temporary directory": find_canaries(temp + names, secrets_),
        "metrics": find_canaries(metrics.encode(), secrets_),
    }
    assert leaks == {k: [] for k in leaks}, leaks
