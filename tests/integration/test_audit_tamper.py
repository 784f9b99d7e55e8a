"""The audit trail refuses UPDATE and DELETE, and `tipline audit verify` catches tampering done behind the
service's back (triggers dropped first, as an attacker with database access would)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from tests.helpers.app import cli_env, run_cli, running_app
from tests.helpers.audit import drop_triggers, execute, fill


@pytest.fixture
def env(tmp_path, fresh_database_url):  # type: ignore[no-untyped-def]
    return cli_env(tmp_path, fresh_database_url)


async def test_database_refuses_update_and_delete(tmp_path, fresh_database_url: str) -> None:  # type: ignore[no-untyped-def]
    async with running_app(tmp_path, fresh_database_url) as harness:
        await fill(harness)
    for statement in ("UPDATE audit_entries SET actor = 'x'", "DELETE FROM audit_entries"):
        with pytest.raises(DBAPIError, match="append-only"):
            await execute(fresh_database_url, statement)


TAMPERING = {
    "alter": [
        "UPDATE audit_entries SET actor = 'staff:someone-else' WHERE id = (SELECT MIN(id) + 2 FROM audit_entries)"
    ],
    "alter-details": [
        "UPDATE audit_entries SET details = '{}' WHERE id = (SELECT MIN(id) + 1 FROM audit_entries)"
    ],
    "delete-middle": ["DELETE FROM audit_entries WHERE id = (SELECT MIN(id) + 3 FROM audit_entries)"],
    "delete-last": ["DELETE FROM audit_entries WHERE id = (SELECT MAX(id) FROM audit_entries)"],
    "reorder": [
        "UPDATE audit_entries SET seq = -seq WHERE seq IN (2, 3)",
        "UPDATE audit_entries SET seq = 3 WHERE seq = -2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = -3",
    ],
    "rehash-one": [
        "UPDATE audit_entries SET actor = 'x', entry_hash = '"
        + "ab" * 32
        + "' WHERE id = (SELECT MIN(id) FROM audit_entries)"
    ],
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
async def test_verify_catches_tampering(
    how: str, backend: str, tmp_path, fresh_database_url: str, env
) -> None:  # type: ignore[no-untyped-def]
    async with running_app(tmp_path, fresh_database_url, audit_chains=1) as harness:
        await fill(harness)
    intact = run_cli(["audit", "verify"], env)
    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stdout

    await execute(fresh_database_url, *drop_triggers(backend), *TAMPERING[how])
    broken = run_cli(["audit", "verify"], env)
    assert broken.returncode == 1
    assert "audit trail BROKEN at chain" in broken.stderr and "entry id" in broken.stderr
