"""`tipline serve --smtp-port P` as a real process: mail sent with aiosmtplib, smtplib and swaks ends as
clues visible through the staff API; sender addresses, display names, signature phones and Received IPs
(ours and the conformance mail's) never appear in the database or the logs."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import smtplib
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from tests.helpers import files_under, find_canaries, free_port, pg_dump, tipline_server
from tests.helpers.app import auth, cli_env, run_cli
from tests.helpers.conformance import conformance_files
from tests.helpers.tools import apt, optional_executable

REPO_ROOT = Path(__file__).resolve().parents[2]
TIP = "jubao@tipline.local"

SENDER = "canary.mailer.5150@example.cn"
DISPLAY = "金丝雀寄信人"
SIGNATURE_PHONE = "13822223333"
RECEIVED_IP = "198.51.100.23"
ORIGIN_IP = "198.51.100.24"
REPLY_TO = "canary.replyto.77@example.net"
CANARIES = [SENDER, DISPLAY, SIGNATURE_PHONE, RECEIVED_IP, ORIGIN_IP, REPLY_TO]
REPORT = "金丝雀邮件正文：派出所副所长收受赌场老板好处费，每次检查前通风报信。"


def canary_mail(client: str) -> bytes:
    return (
        f"Received: from [{RECEIVED_IP}] (unknown [{RECEIVED_IP}]) by mx.example.cn with ESMTPA\r\n"
        f"X-Originating-IP: [{ORIGIN_IP}]\r\n"
        f"From: {DISPLAY} <{SENDER}>\r\nReply-To: {REPLY_TO}\r\nTo: {TIP}\r\n"
        f"Subject: 举报 {client}\r\nMessage-ID: <{client}.canary@example.cn>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{REPORT}（{client}）\r\n\r\n--\r\n{DISPLAY}\r\n手机：{SIGNATURE_PHONE}\r\n"
    ).encode()


def conformance_canaries() -> list[str]:
    """From addresses and public Received IPs of the conformance mail."""
    found: set[str] = set()
    for path in conformance_files():
        text = path.read_bytes().decode("latin-1")
        headers = text.split("\n\n", 1)[0]
        for match in re.finditer(r"(?im)^from:.*?([\w.+-]+@[\w-]+(?:\.[\w-]+)+)", headers):
            found.add(match.group(1))
        for match in re.finditer(r"(?im)^received:(?:.*\n[ \t].*)*.*", headers):
            for ip in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", match.group(0)):
                try:
                    if ipaddress.ip_address(ip).is_global:
                        found.add(ip)
                except ValueError:
                    pass
    return sorted(found)


@pytest.mark.slow
async def test_mail_to_tipline_serve_becomes_clues_and_leaves_no_trace(
    backend, tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, fresh_database_url)
    assert run_cli(["db", "upgrade"], env).returncode == 0
    made = run_cli(["staff", "add", "--name", "mail-sup", "--role", "supervisor"], env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    smtp_port = free_port()
    log_path = tmp_path / "server.log"
    sent = 0
    with tipline_server(env, log_path, "--smtp-port", str(smtp_port)) as server:
        await aiosmtplib.send(
            canary_mail("aiosmtplib"), sender=SENDER, recipients=[TIP], hostname="127.0.0.1", port=smtp_port
        )

        def by_smtplib() -> None:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
                client.sendmail(SENDER, [TIP], canary_mail("smtplib"))

        await asyncio.to_thread(by_smtplib)
        sent = 2
        swaks = optional_executable("swaks", apt("swaks"))
        if swaks:
            message = tmp_path / "swaks.eml"
            message.write_bytes(canary_mail("swaks"))
            process = await asyncio.create_subprocess_exec(
                swaks,
                "--server",
                "127.0.0.1",
                "--port",
                str(smtp_port),
                "--from",
                SENDER,
                "--to",
                TIP,
                "--data",
                str(message),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert await asyncio.wait_for(process.wait(), 30) == 0
            message.unlink()
            sent += 1
        for path in conformance_files():  # the real-world mail, for the privacy check
            try:
                await aiosmtplib.send(
                    path.read_bytes(),
                    sender="x@example.org",
                    recipients=[TIP],
                    hostname="127.0.0.1",
                    port=smtp_port,
                    timeout=30,
                )
            except aiosmtplib.SMTPResponseException as exc:
                assert exc.code == 554, path.name

        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            page = await client.get(
                "/api/v1/clues", params={"channel": "email", "limit": 200}, headers=auth(token)
            )
            assert page.status_code == 200
            texts = []
            for item in page.json()["items"]:
                detail = await client.get(f"/api/v1/clues/{item['id']}", headers=auth(token))
                texts.append(detail.json()["text"])
        ours = [t for t in texts if "金丝雀邮件正文" in t]
        assert len(ours) == sent
        for via in ("aiosmtplib", "smtplib", "swaks")[:sent]:
            assert any(via in t for t in ours)
        assert not any(SENDER in t or SIGNATURE_PHONE in t or RECEIVED_IP in t for t in ours)

    if backend == "sqlite":
        stored = b"".join(p.read_bytes() for p in files_under(tmp_path) if p != log_path)
    else:
        stored = pg_dump(fresh_database_url)
    logs = log_path.read_bytes()
    assert b"SMTP receiver listening" in logs or b"Uvicorn running" in logs
    assert find_canaries(stored, CANARIES) == []
    assert find_canaries(logs, CANARIES) == []
    assert find_canaries(stored, [REPORT[:12]]) == [] and find_canaries(logs, [REPORT[:12]]) == []
    others = conformance_canaries()
    assert len(others) >= 5
    assert find_canaries(stored, others) == []
    assert find_canaries(logs, others) == []
