"""The receipt flood (issue 9): one client sends wrong receipt codes to the JSON API and the status page as
fast as it can for a bounded time, against a real server. Genuine lookups from elsewhere keep working (at
least 95 % answered 200 within 5 s), and nothing about the flooding client (its address, its headers) is
retained in the database or the logs.

The 5 s and the flood's least strength (50 wrong codes in 10 s) are the reference machine's (tests/pace.py):
on a slower or busier one they are scaled by the server's pace, measured just before the flood."""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from tests.helpers import files_under, pg_dump, tipline_server
from tests.helpers.app import cli_env
from tests.helpers.pace import async_request_seconds, healthz_pace

FLOOD_SECONDS = 10.0
FLOOD_CONCURRENCY = 24
FLOODER = "198.51.100.66"
FLOOD_AGENT = "flood-agent-zq7k"
FLOOD_MARK = "flood-mark-8c1e"
GENUINE = "203.0.113.10"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


async def status_form(client: httpx.AsyncClient) -> dict[str, str]:
    page = await client.get("/status")
    assert page.status_code == 200
    return dict(HIDDEN.findall(page.text))


async def test_wrong_code_flood_leaves_genuine_lookups_working_and_no_trace(
    backend, tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, fresh_database_url)
    env["TIPLINE_WEB_TRUSTED_PROXY_HOPS"] = "1"  # behind one proxy: X-Forwarded-For names the client
    log_path = tmp_path / "server.log"
    with tipline_server(env, log_path, "--smtp-port", "0") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as genuine:
            made = await genuine.post("/api/v1/tips", json={"text": "派出所副所长收受赌场老板好处费。"})
            assert made.status_code == 201
            code = made.json()["receipt"]
            pace = healthz_pace(await async_request_seconds(lambda: genuine.get("/healthz")))
            answered_within = pace.limit(5.0)
            genuine_headers = {"X-Forwarded-For": GENUINE}

            flood_headers = {
                "X-Forwarded-For": FLOODER,
                "User-Agent": FLOOD_AGENT,
                "X-Flood-Mark": FLOOD_MARK,
            }
            stop = time.monotonic() + FLOOD_SECONDS
            sent = 0

            async def flood(worker: int) -> None:
                nonlocal sent
                limits = httpx.Limits(max_connections=4)
                async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as client:
                    form = await status_form(client)
                    n = 0
                    while time.monotonic() < stop:
                        n += 1
                        wrong = f"{worker:02d}{n:023d}"[-25:]
                        if n % 2:
                            response = await client.post(
                                "/api/v1/receipt/status", json={"receipt": wrong}, headers=flood_headers
                            )
                        else:
                            response = await client.post(
                                "/status", data={**form, "code": wrong}, headers=flood_headers
                            )
                        assert response.status_code in (404, 429), response.status_code
                        sent += 1

            async def lookups() -> list[float | None]:
                """Genuine lookups during the flood: seconds each, None for a failure."""
                form = await status_form(genuine)
                results: list[float | None] = []
                while time.monotonic() < stop:
                    began = time.monotonic()
                    if len(results) % 2:
                        response = await genuine.post(
                            "/api/v1/receipt/status", json={"receipt": code}, headers=genuine_headers
                        )
                    else:
                        response = await genuine.post(
                            "/status", data={**form, "code": code}, headers=genuine_headers
                        )
                    took = time.monotonic() - began
                    results.append(took if response.status_code == 200 and took <= answered_within else None)
                    await asyncio.sleep(0.2)
                return results

            flooding = [asyncio.create_task(flood(w)) for w in range(FLOOD_CONCURRENCY)]
            results = await lookups()
            await asyncio.gather(*flooding)

    ok = [r for r in results if r is not None]
    assert len(results) >= pace.floor(
        10
    )  # about 20 on the reference machine: 0.2 s apart, 0.25 s each at least
    assert len(ok) / len(results) >= 0.95, f"{len(ok)}/{len(results)} genuine lookups succeeded"
    least = pace.floor(50)
    assert sent >= least, f"the flood was too weak: {sent} requests (at least {least:.0f} here, {pace})"
    print(
        f"{backend}: {sent} wrong codes in {FLOOD_SECONDS:.0f}s (at least {least:.0f}); genuine "
        f"{len(ok)}/{len(results)} ok, slowest {max(ok):.2f}s (within {answered_within:.1f}s)"
    )

    if backend == "sqlite":
        stored = b"".join(p.read_bytes() for p in files_under(tmp_path) if p != log_path)
    else:
        stored = pg_dump(fresh_database_url) + b"".join(
            p.read_bytes() for p in files_under(tmp_path) if p != log_path
        )
    logs = log_path.read_bytes()
    assert b"Uvicorn running" in logs
    for trace in (FLOODER, FLOOD_AGENT, FLOOD_MARK, GENUINE):
        assert trace.encode() not in stored, trace
        assert trace.encode() not in logs, trace
