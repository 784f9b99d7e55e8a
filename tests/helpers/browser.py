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


def check_axe(
    browser: Any, base_url: str, page: Any, name: str, impacts: tuple[str, ...] = ("serious", "critical")
) -> None:
    """axe-core (its default rules: WCAG 2.x A and AA and best practices) over the page's HTML in a
    JS-enabled context of its own (the page under test may have scripts disabled); no violation of the
    given impacts (serious or critical by default)."""
    html = page.content()
    context = browser.new_context()
    try:
        probe = context.new_page()
        probe.route(f"{base_url}/__axe__", lambda route: route.fulfill(body=html, content_type="text/html"))
        probe.goto(f"{base_url}/__axe__")
        probe.evaluate(AXE.read_text())
        result = probe.evaluate(
            "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
            " return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,"
            " targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
        )
    finally:
        context.close()
    bad = [v for v in result if v["impact"] in impacts]
    assert not bad, f"{name}: {bad}"


def shoot_both(page: Any, directory: Path, name: str) -> None:
    """Full-page screenshots of the current page at 1280 px and at 390 px (a phone), for review; the
    viewport is left as it was."""
    directory.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(directory / f"{name}-{width}px.png"), full_page=True)
    page.set_viewport_size(before)


_USED_CODES: dict[str, set[str]] = {}


def fresh_totp_code(totp: Any) -> str:
    """A code to type now: never in its step's last seconds, and never one already used for this secret
    (the server accepts a code once, so a second login of one account within a step waits for the next)."""
    import time

    used = _USED_CODES.setdefault(totp.secret, set())
    while True:
        if totp.interval - time.time() % totp.interval < 3:
            time.sleep(3.5)
        code = totp.now()
        if code not in used:
            used.add(code)
            return code
        time.sleep(1.0)


def staff_login(
    page: Any, base_url: str, name: str, password: str, totp: Any, target: str = "/staff"
) -> None:
    """Log in through the form (JavaScript not needed), never typing a TOTP code in its last seconds."""

    page.goto(base_url + target)
    assert "/staff/login" in page.url
    page.locator("#name").fill(name)
    page.locator("#password").fill(password)
    code = fresh_totp_code(totp)
    page.locator("#totp").fill(code)
    with page.expect_navigation():
        page.locator("#totp").press("Enter")
    assert "/staff/login" not in page.url, page.locator("main").inner_text()
