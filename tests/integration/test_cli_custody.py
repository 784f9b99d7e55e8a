# ruff: noqa: S603 - the test runs the tipline command line
"""The key ceremony and a two-person release through the `tipline` command line, passphrases on a pipe."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from service.audit.models import AuditEntry
from tests.helpers.app import cli_env, run_cli, run_cli_with_passphrases, running_app, unique


async def test_ceremony_and_release_by_cli(tmp_path: Path, fresh_database_url: str) -> None:
    env = cli_env(tmp_path, fresh_database_url)
    assert run_cli(["db", "upgrade"], env).returncode == 0
    a, b, c, boss = unique("甲"), unique("乙"), unique("丙"), unique("科长")
    for name, role in ((a, "custodian"), (b, "custodian"), (c, "custodian"), (boss, "supervisor")):
        assert run_cli(["staff", "add", "--name", name, "--role", role], env).returncode == 0
    phrases = ["first passphrase 111", "second passphrase 222", "third passphrase 333"]
    made = run_cli_with_passphrases(
        ["keys", "init", "--custodian", a, "--custodian", b, "--custodian", c, "--threshold", "2"],
        env,
        phrases,
    )
    assert made.returncode == 0, made.stderr
    assert "(2 of 3)" in made.stdout
    assert not list(tmp_path.rglob("identity*.private.json"))  # noqa: ASYNC240 - never whole on disk
    public = run_cli(["keys", "export-public"], env)
    assert set(json.loads(public.stdout)) == {"case", "identity", "contact", "escrow"}
    assert "private" not in public.stdout

    async with running_app(tmp_path, fresh_database_url) as harness:
        body = {
            "text": "看守所民警收钱帮人办保外就医。",
            "anonymous": False,
            "submitter": {"name": "赵实名", "phone": "13700000000"},
        }
        assert (await harness.client.post("/api/v1/tips", json=body)).status_code == 201
        async with harness.runtime.session_factory() as session:
            from service.registry.models import Clue

            clue_id = (await session.execute(select(Clue.id))).scalar_one()

    requested = run_cli(
        ["custody", "request", "--clue", clue_id, "--as", a, "--reason", "核实实名举报人身份"], env
    )
    assert requested.returncode == 0, requested.stderr
    request_id = requested.stdout.split()[1]
    approved = run_cli(["custody", "approve", request_id, "--as", boss], env)
    assert approved.returncode == 0, approved.stderr
    share = {n: next((tmp_path / "custody").glob(f"identity-*.{n}.share.json")) for n in (a, b, c)}

    wrong = run_cli_with_passphrases(
        ["custody", "release", request_id, "--as", a, "--share", str(share[a]), "--share", str(share[b])],
        env,
        [phrases[0], "not the right one!!"],
    )
    assert wrong.returncode == 1 and "赵实名" not in wrong.stdout
    released = run_cli_with_passphrases(
        ["custody", "release", request_id, "--as", a, "--share", str(share[a]), "--share", str(share[c])],
        env,
        [phrases[0], phrases[2]],
    )
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["name"] == "赵实名"

    async with running_app(tmp_path, fresh_database_url) as harness:
        async with harness.runtime.session_factory() as session:
            actions = list(
                (await session.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars()
            )
    for action in (
        "keys.init",
        "custody.requested",
        "custody.approved",
        "custody.release_failed",
        "custody.released",
    ):
        assert action in actions
    assert run_cli(["audit", "verify"], env).returncode == 0
