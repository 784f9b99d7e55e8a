"""Registry console pages through a logged-in web session, on both databases: they render, refuse other
roles, ignore absurd dates, and a refused step changes nothing."""

from __future__ import annotations

import re

from tests.helpers.app import Harness
from tests.helpers.registry import make_world, submit
from tests.helpers.staff_web import log_in, make_web_staff


async def test_pages_render_for_a_supervisor_and_refuse_others(harness: Harness) -> None:
    world = await make_world(harness)
    supervisor = await make_web_staff(harness, ["supervisor"])  # there when the clue's key is wrapped
    clue_id = await submit(harness, world)
    operator = await make_web_staff(harness, ["operator"])
    async with log_in(harness, supervisor) as client:
        for path in (
            "/staff/registry",
            "/staff/registry?received_from=0001-01-01&received_to=9999-12-31&status=registered",
            "/staff/registry?cursor=bad",
            "/staff/registry/brief",
            "/staff/registry/brief?start=0001-01-01&end=0001-01-02",
            "/staff/registry/brief?start=2026-12-31&end=2026-01-01",
            "/staff/registry/supervision",
            f"/staff/registry/clues/{clue_id}",
        ):
            response = await client.get(path)
            assert response.status_code in (200, 422), (path, response.status_code)
            assert response.status_code == 200 or "游标" in response.text
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert "派出所民警收了对方的红包" in page.text and "办理经过" in page.text
        assert (await client.get("/staff/registry/clues/nope")).status_code == 404
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "the clue page carries the CSRF token"
        response = await client.post(
            f"/staff/registry/clues/{clue_id}/transition",
            data={"csrf_token": token.group(1), "action": "archive", "reason": "x"},
        )
        assert response.status_code == 409 and "不能进行此操作" in response.text
        response = await client.post(
            f"/staff/registry/clues/{clue_id}/transition", data={"action": "triage", "reason": "x"}
        )
        assert response.status_code == 403  # no CSRF token
    async with log_in(harness, operator) as client:
        for path in ("/staff/registry", "/staff/registry/brief", "/staff/registry/supervision"):
            assert (await client.get(path)).status_code == 403
        assert (await client.get(f"/staff/registry/clues/{clue_id}")).status_code == 404
