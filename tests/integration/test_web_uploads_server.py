"""The web channel as a real server process (uvicorn): a 50 MB upload with TMPDIR pointed at an empty
directory leaves no plaintext anywhere, and junk without proof-of-work does not starve genuine reports."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from pathlib import Path

import httpx
import pytest

from service.citizen.guard import solve
from tests.helpers import files_under, find_canaries, tipline_server
from tests.helpers.pace import async_request_seconds, healthz_pace
from tests.helpers.web import hidden_fields

pytestmark = pytest.mark.slow

BOUNDARY = "tiplineboundary" + secrets.token_hex(8)


def multipart_stream(fields: dict[str, str], filename: str, line: bytes, size: int):
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v.encode() + b"\r\n"
        for k, v in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()

    def body():
        yield head
        per_block = 1024 * 1024 // len(line)
        lines_left = -(-size // len(line))  # whole lines, at least ``size`` bytes
        while lines_left > 0:
            n = min(per_block, lines_left)
            lines_left -= n
            yield line * n
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    return body()


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return {
        **os.environ,
        "TMPDIR": str(tmpdir),
        "TIPLINE_DATA_DIR": str(tmp_path / "data"),
        "TIPLINE_DATABASE_AUTO_UPGRADE": "true",
        "TIPLINE_WEB_ATTACHMENT_MAX_BYTES": str(60 * 1024 * 1024),
        "TIPLINE_WEB_POW_BITS": "10",
    }


def test_50mb_upload_leaves_no_plaintext(server_env: dict[str, str], tmp_path: Path):
    canary = "CANARY" + secrets.token_hex(6)
    line = f"{canary} 举报材料第一行，内容不应以明文出现在磁盘上。\n".encode()
    with (
        tipline_server(server_env, tmp_path / "server.log", "--upgrade") as server,
        httpx.Client(base_url=server.base_url, timeout=120, follow_redirects=True) as client,
    ):
        hidden = hidden_fields(client.get("/report").text)
        fields = {**hidden, "pow_nonce": solve(hidden["pow_challenge"], 10), "text": f"{canary} 五十兆的附件"}
        started = time.monotonic()
        response = client.post(
            "/report",
            content=multipart_stream(fields, "big.txt", line, 50 * 1024 * 1024),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text[:500]
        assert re.search(r'<p class="code"', response.text)
        assert "已收到文件 1 个" in response.text
    # Nothing spooled: the one thing a server leaves in TMPDIR is the name segmenter's dictionary cache
    # (jieba's, no report content; the canary search below covers it too).
    left = [p.name for p in Path(server_env["TMPDIR"]).iterdir()]
    assert all(name.startswith("tipline-jieba-") for name in left), left
    data = Path(server_env["TIPLINE_DATA_DIR"])
    blobs = [p for p in (data / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].stat().st_size > 50 * 1024 * 1024
    leaked = [
        str(p)
        for p in files_under(data, Path(server_env["TMPDIR"]))
        if find_canaries(p.read_bytes(), [canary])
    ]
    assert leaked == [], leaked
    assert canary not in (tmp_path / "server.log").read_text(errors="replace")
    print(f"50 MB upload in {elapsed:.1f}s")


def test_junk_without_pow_does_not_starve_genuine_reports(server_env: dict[str, str], tmp_path: Path):
    server_env = {**server_env, "TIPLINE_WEB_QUEUE_CONCURRENCY": "1", "TIPLINE_WEB_QUEUE_WAITING": "4"}

    async def run(base_url: str) -> tuple[int, int, int]:
        stop = asyncio.Event()
        junk_sent = 0
        # A genuine report in 5 s on the reference machine (tests/pace.py): scaled by the server's pace here,
        # measured before the junk starts.
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as probe:
            within = healthz_pace(await async_request_seconds(lambda: probe.get("/healthz"))).limit(5.0)

        async def junk() -> None:
            nonlocal junk_sent
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                while not stop.is_set():
                    # A fresh form each time: a resent form would be answered "already received" at once.
                    hidden = hidden_fields((await client.get("/report")).text)
                    data = {**hidden, "pow_nonce": "", "text": "垃圾" * 200}
                    await client.post("/report", files=[(k, (None, v.encode())) for k, v in data.items()])
                    junk_sent += 1

        async def genuine() -> tuple[int, int]:
            ok = 0
            total = 20
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                for i in range(total):
                    started = time.monotonic()
                    hidden = hidden_fields((await client.get("/report")).text)
                    nonce = await asyncio.to_thread(solve, hidden["pow_challenge"], 10)
                    data = {**hidden, "pow_nonce": nonce, "text": f"真实举报 {i}：民警收钱不立案"}
                    response = await client.post(
                        "/report", files=[(k, (None, v.encode())) for k, v in data.items()]
                    )
                    filed = response.status_code == 303 and response.headers["location"] == "/receipt"
                    if filed and time.monotonic() - started < within:
                        ok += 1
            return ok, total

        junk_task = asyncio.create_task(junk())
        await asyncio.sleep(0.5)
        ok, total = await genuine()
        stop.set()
        await junk_task
        return ok, total, junk_sent

    with tipline_server(server_env, tmp_path / "server.log", "--upgrade") as server:
        ok, total, junk_sent = asyncio.run(run(server.base_url))
    assert junk_sent > 10
    assert ok / total >= 0.95, (ok, total, junk_sent)
