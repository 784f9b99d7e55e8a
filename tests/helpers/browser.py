"""Browser tests: Debian's chromium through Playwright (never a downloaded browser), a `tipline serve`
process on SQLite or PostgreSQL for it to talk to, and our command line against that server's database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers import REPO_ROOT, ServerProcess, tipline_server
from tests.helpers.database import own_database
from tests.helpers.tools import require_module, require_path

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO_ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    require_path(CHROMIUM, "Debian's chromium", "apt-get install chromium (scripts/test.sh does, as root)")
    require_module("playwright", "pip install -e '.[test]'")


def require_axe() -> None:
    require_path(AXE, "axe-core", "cd tests/browser && npm ci (scripts/test.sh does)")


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run `tipline ARGS` against the server's database; returns its standard output."""
    out = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


@contextmanager
def browser_server(
    backend: str, data: Path, **settings: str
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """`tipline serve --upgrade` on a database of its own (an SQLite file in ``data`` or a fresh PostgreSQL
    database), no SMTP receiver; yields the server and the environment for ``cli`` against it."""
    with own_database(backend, data) as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
        env.update(
            TIPLINE_DATA_DIR=str(data),
            TIPLINE_DATABASE_URL=database_url,
            TIPLINE_DATABASE_AUTO_UPGRADE="true",
            TIPLINE_SMTP_PORT="0",
            **{f"TIPLINE_{name.upper()}": value for name, value in settings.items()},
        )
        with tipline_server(env, data / "server.log", "--upgrade") as process:
            yield process, env


@contextmanager
def launch_chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
