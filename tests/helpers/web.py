"""Helpers for the web channel's integration tests: read the hidden fields a page carries, post forms."""

from __future__ import annotations

import io
import re

import httpx

from service.citizen.guard import solve

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"')
CODE = re.compile(r'<p class="code"[^>]*>(.*?)</p>', re.S)


def hidden_fields(html: str) -> dict[str, str]:
    return dict(HIDDEN.findall(html))


def receipt_from(html: str) -> str:
    match = CODE.search(html)
    assert match, "no receipt code on the page"
    return "".join(re.findall(r"<span>(\d+)</span>", match.group(1)))


async def clue_of_receipt(harness, code: str) -> str:  # type: ignore[no-untyped-def]
    """The clue a receipt code opens (anonymous reports keep only the hour: "the newest" cannot be told)."""
    from sqlalchemy import select

    from service.intake.models import Receipt
    from service.intake.receipts import receipt_hash

    async with harness.runtime.session_factory() as session:
        return await session.scalar(
            select(Receipt.clue_id).where(
                Receipt.code_hash == receipt_hash(harness.runtime.lookup_key("receipt"), code)
            )
        )


async def report_form(client: httpx.AsyncClient, *, lang: str = "") -> dict[str, str]:
    page = await client.get("/report" + (f"?lang={lang}" if lang else ""))
    assert page.status_code == 200
    return hidden_fields(page.text)


async def post_report(
    client: httpx.AsyncClient,
    fields: dict[str, str],
    files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    *,
    pow_bits: int = 16,
    solve_pow: bool = True,
    headers: dict[str, str] | None = None,
    follow: bool = True,
) -> httpx.Response:
    """A fresh form, filled and sent; ``follow``: the receipt page the answer redirects to
    (post/redirect/get), else the answer itself."""
    hidden = await report_form(client)
    data = {**hidden, **fields}
    if solve_pow and hidden.get("pow_challenge"):
        data["pow_nonce"] = solve(hidden["pow_challenge"], pow_bits)
    return await send_report(client, data, files, headers=headers, follow=follow)


async def send_report(
    client: httpx.AsyncClient,
    data: dict[str, str],
    files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    *,
    headers: dict[str, str] | None = None,
    follow: bool = True,
) -> httpx.Response:
    """``data`` (all the form's fields, hidden ones included) sent as the browser sends the form."""
    multipart = [(k, (None, v.encode())) for k, v in data.items()]
    multipart += [("files", (name, io.BytesIO(body), "application/octet-stream")) for name, body in files]
    return await client.post("/report", files=multipart, headers=headers or {}, follow_redirects=follow)


async def open_status(client: httpx.AsyncClient, code: str, *, lang: str = "") -> httpx.Response:
    page = await client.get("/status")
    data = {**hidden_fields(page.text), "code": code}
    if lang:
        data["lang"] = lang
    return await client.post("/status", data=data)


async def post_reply(
    client: httpx.AsyncClient,
    status_html: str,
    text: str,
    files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
) -> httpx.Response:
    data = hidden_fields(status_html)
    data["text"] = text
    multipart = [(k, (None, v.encode())) for k, v in data.items()]
    multipart += [("files", (name, io.BytesIO(body), "application/octet-stream")) for name, body in files]
    return await client.post("/status/reply", files=multipart)
