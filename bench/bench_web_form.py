"""Web channel benchmarks, each beside a baseline measured in the same run, against a real uvicorn server
on the embedded default (SQLite, all roles).

Usage: python bench/bench_web_form.py [--requests 200] [--upload-mb 200]

1. Report form weight: the HTML of GET /report, and with its CSS and JS (no images exist). Target < 100 KB.
2. Time to first byte of GET /report (median, p95) beside GET /healthz. Target < 50 ms.
3. A plain-text upload of --upload-mb MB streamed through POST /report (parse, sniff, sanitise, encrypt,
   store, submit) beside the same bytes POSTed to an endpoint that only discards them: throughput of each,
   and the server's resident memory growth (peak sampled VmRSS minus VmRSS before). Target < 50 MB.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from fastapi import Request
from service.app import main
from service.platform.settings import Settings

# The baseline streams past the generic body limit like the real upload routes (exempt by exact path).
main.WEB_UPLOAD_PATHS = (*main.WEB_UPLOAD_PATHS, "/report/__discard")
app = main.create_app(Settings(database_auto_upgrade=True))

@app.post("/report/__discard")
async def discard(request: Request) -> dict:
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
    return {{"bytes": n}}

uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def body(fields: dict[str, str], boundary: str, total: int):
    yield b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    line = "某区法院执行局法官收受当事人红包，并打招呼过问案件。\n".encode()
    per_block = 256 * 1024 // len(line)
    lines_left = total // len(line)  # whole lines only: a cut character would make the text invalid
    while lines_left > 0:
        n = min(per_block, lines_left)
        lines_left -= n
        yield line * n
    yield f"\r\n--{boundary}--\r\n".encode()


def ttfb(client: httpx.Client, path: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with client.stream("GET", path) as response:
            next(response.iter_raw(1), None)
            times.append((time.perf_counter() - started) * 1000)
    return times


def upload(
    client: httpx.Client, path: str, fields: dict[str, str], total: int, pid: int
) -> tuple[float, int]:
    boundary = "b" + secrets.token_hex(12)
    before = rss_kb(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    response = client.post(
        path,
        content=body(fields, boundary, total),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    assert response.status_code in (200, 303), (  # 303: the report was filed, on to its receipt page
        response.status_code,
        response.text[response.text.find("<h1>") :][:300],
    )
    return elapsed, (peak - before) // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--upload-mb", type=int, default=200)
    args = parser.parse_args()
    total = args.upload_mb * 1024 * 1024
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "TIPLINE_DATA_DIR": data,
            "TIPLINE_WEB_ATTACHMENT_MAX_BYTES": str(total + 1024 * 1024),
            "TIPLINE_WEB_POW_BITS": "12",
        }
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", SERVER.format(root=str(ROOT), port=port)], env=env, cwd=ROOT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with httpx.Client(base_url=base, timeout=600) as client:
                form = client.get("/report")
                css = client.get("/static/web.css")
                js = client.get("/static/web.js")
                html_kb = len(form.content) / 1024
                all_kb = (len(form.content) + len(css.content) + len(js.content)) / 1024
                print(
                    f"report form: HTML {html_kb:.1f} KB; with CSS and JS {all_kb:.1f} KB (target < 100 KB)"
                )

                ttfb(client, "/report", 20)  # warm-up
                form_t = ttfb(client, "/report", args.requests)
                base_t = ttfb(client, "/healthz", args.requests)
                p95 = statistics.quantiles(form_t, n=20)[-1]
                print(
                    f"TTFB GET /report: median {statistics.median(form_t):.2f} ms, p95 {p95:.2f} ms "
                    f"(target < 50 ms); baseline GET /healthz: median {statistics.median(base_t):.2f} ms, "
                    f"p95 {statistics.quantiles(base_t, n=20)[-1]:.2f} ms"
                )

                from service.citizen.guard import solve
                from tests.helpers.web import hidden_fields

                discard_s, discard_mb = upload(client, "/report/__discard", {"text": "x"}, total, process.pid)
                hidden = hidden_fields(client.get("/report").text)
                fields = {
                    **hidden,
                    "pow_nonce": solve(hidden["pow_challenge"], 12),
                    "text": "基准测试：大附件",
                }
                report_s, report_mb = upload(client, "/report", fields, total, process.pid)
                mb = args.upload_mb
                print(
                    f"{mb} MB text upload through POST /report: {report_s:.1f} s, {mb / report_s:.0f} MB/s, "
                    f"server RSS growth {report_mb} MB (target < 50 MB)"
                )
                print(
                    f"{mb} MB to a discard-only endpoint:      {discard_s:.1f} s, {mb / discard_s:.0f} MB/s, "
                    f"server RSS growth {discard_mb} MB"
                )
        finally:
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
