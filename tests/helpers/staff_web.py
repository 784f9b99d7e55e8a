"""Staff web login for tests: a staff member with password and TOTP, a browser-like client, logging in."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pyotp

from service.auth import service as auth_service
from service.auth import sessions as session_service
from tests.helpers.app import Harness, unique

PASSWORD = "correct horse battery 九"  # noqa: S105
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class WebStaff:
    id: str
    name: str
    token: str  # API bearer token
    totp: pyotp.TOTP
    password: str = PASSWORD

    def code(self, offset_steps: int = 0) -> str:
        return self.totp.at(time.time() + 30 * offset_steps)


async def make_web_staff(harness: Harness, roles: list[str], unit_id: str | None = None) -> WebStaff:
    name = unique("web")
    staff_id, token = await harness.add_staff(name, roles, unit_id)
    async with harness.runtime.session_factory() as session:
        staff = await auth_service.get_staff(session, staff_id)
        await session_service.set_password(
            session, staff=staff, password=PASSWORD, actor="test", keys=harness.runtime.keys
        )
        uri = await session_service.enrol_totp(
            session, totp_key=harness.runtime.lookup_key("totp-secret"), staff=staff, actor="test"
        )
        await session.commit()
    return WebStaff(staff_id, name, token, pyotp.parse_uri(uri))  # type: ignore[arg-type]


def web_client(harness: Harness) -> httpx.AsyncClient:
    """A browser-like client of its own (cookie jar), over https so Secure cookies travel."""
    return httpx.AsyncClient(
        transport=harness.client._transport,  # noqa: SLF001 - the harness's ASGI transport
        base_url="https://tipline.test",
        headers={"Accept": "text/html"},
    )


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def post_login(client: httpx.AsyncClient, name: str, password: str, code: str) -> httpx.Response:
    page = await client.get("/staff/login")
    assert page.status_code == 200
    return await client.post(
        "/staff/login",
        data={
            "name": name,
            "password": password,
            "totp": code,
            "csrf_token": csrf_of(page.text),
            "next": "/staff",
        },
    )


@asynccontextmanager
async def log_in(
    harness: Harness, staff: WebStaff, offset_steps: int = 0
) -> AsyncIterator[httpx.AsyncClient]:
    async with web_client(harness) as client:
        response = await post_login(client, staff.name, staff.password, staff.code(offset_steps))
        assert response.status_code == 303, response.text
        yield client
