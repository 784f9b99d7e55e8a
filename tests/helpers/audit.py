"""Audit-trail tampering for tests: some audited activity, raw SQL behind the service, its triggers."""

from __future__ import annotations

from sqlalchemy import text

from service.platform.db import create_engine
from tests.helpers.app import Harness, auth, unique


async def fill(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"])
    for i in range(6):
        response = await harness.client.post("/api/v1/tips", json={"text": f"第{i}条举报：民警收红包。"})
        assert response.status_code == 201
    listed = await harness.client.get("/api/v1/clues", headers=auth(supervisor))
    for item in listed.json()["items"][:3]:
        assert (
            await harness.client.get(f"/api/v1/clues/{item['id']}", headers=auth(supervisor))
        ).status_code == 200


async def execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def drop_triggers(backend: str) -> list[str]:
    if backend == "sqlite":
        return ["DROP TRIGGER audit_entries_no_update", "DROP TRIGGER audit_entries_no_delete"]
    return ["DROP TRIGGER audit_entries_append_only ON audit_entries"]
