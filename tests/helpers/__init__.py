# ruff: noqa: S603, S607 - the tests run our own command line and PostgreSQL's client
"""Test tools shared across suites: a real server process, canary searching."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port the OS has just handed out, for a listener that cannot bind port 0 itself and report what it
    got (the SMTP receiver, where ``--smtp-port 0`` means "off"). Prefer port 0 where a server supports it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> bytes:
        return self.log_path.read_bytes()


_LISTENING = re.compile(rb"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@contextmanager
def tipline_server(env: dict[str, str], log_path: Path, *extra: str) -> Iterator[ServerProcess]:
    """`tipline serve` as a real process on a loopback port the OS chooses (``--port 0``; the server logs
    the one it got); stdout and stderr go to ``log_path``. No SMTP receiver unless ``extra`` asks for one
    with ``--smtp-port``: its default port (2525) may be taken by anything else on the machine."""
    if "--smtp-port" not in extra:
        extra = (*extra, "--smtp-port", "0")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", "0", *extra],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        base_url = None
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text(errors='replace')}")
            if base_url is None and (found := _LISTENING.search(log_path.read_bytes())):
                base_url = found.group(1).decode()
            if base_url is not None:
                try:
                    if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.1)
        yield ServerProcess(base_url, process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def canary_forms(canary: str) -> list[bytes]:
    """Every way a string could sit in bytes: UTF-8, UTF-16 both orders, JSON-escaped, base64 at the three
    alignments (the stable middle part of each)."""
    raw = canary.encode("utf-8")
    forms = {
        raw,
        canary.encode("utf-16-le"),
        canary.encode("utf-16-be"),
        json.dumps(canary).strip('"').encode("ascii"),
        json.dumps(canary, ensure_ascii=False).strip('"').encode("utf-8"),
    }
    for shift in range(3):
        encoded = base64.b64encode(b"\x00" * shift + raw)
        start = (shift * 4 + 2) // 3 + 1
        middle = encoded[start : len(encoded) - 3]
        if len(middle) >= 8:
            forms.add(middle)
    return sorted(forms)


def find_canaries(blob: bytes, canaries: list[str]) -> list[str]:
    return [c for c in canaries for form in canary_forms(c) if form in blob]


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in root.rglob("*"):
                if path.is_file():
                    yield path


def pg_dump(database_url: str) -> bytes:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    from tests.helpers.tools import apt, require_executable

    executable = require_executable("pg_dump", apt("postgresql-client"))
    return subprocess.run(
        [executable, "--no-owner", "--data-only", "--inserts", dsn],
        capture_output=True,
        check=True,
        timeout=120,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    ).stdout
