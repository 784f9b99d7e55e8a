"""The `tipline` command line against a real database: fixed points other tools rely on."""

from __future__ import annotations

import httpx

from service.platform.settings import SettingsError, load_settings
from tests.helpers import tipline_server
from tests.helpers.app import cli_env, run_cli


def test_bad_settings_fail_with_the_variable_named(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, "mysql://nope")
    result = run_cli(["audit", "verify"], env)
    assert result.returncode == 2 and "TIPLINE_DATABASE_URL" in result.stderr
    env = cli_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db") | {"TIPLINE_REGISTRY_PREFIX": "lower"}
    result = run_cli(["audit", "verify"], env)
    assert result.returncode == 2 and "TIPLINE_REGISTRY_PREFIX" in result.stderr
    monkeypatch.setenv("TIPLINE_ENVIRONMENT", "production")
    monkeypatch.delenv("TIPLINE_LOOKUP_SECRET", raising=False)
    try:
        load_settings()
    except SettingsError as exc:
        assert "TIPLINE_LOOKUP_SECRET" in str(exc)
    else:
        raise AssertionError("production without a lookup secret must not start")


async def test_staff_and_units_through_the_cli_and_the_token_works(tmp_path, fresh_database_url: str) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, fresh_database_url)
    assert run_cli(["db", "upgrade"], env).returncode == 0
    assert run_cli(["unit", "add", "--name", "区纪委监委", "--kind", "discipline"], env).returncode == 0
    assert run_cli(["unit", "add", "--name", "第一审查室", "--parent", "区纪委监委"], env).returncode == 0
    missing_parent = run_cli(["unit", "add", "--name", "x", "--parent", "nowhere"], env)
    assert missing_parent.returncode == 1 and "unit not found" in missing_parent.stderr
    # aliases are checked as recusal compares them, as on the admin page
    generic = run_cli(["unit", "alias", "--unit", "第一审查室", "--alias", "派出所"], env)
    assert generic.returncode == 1 and "only generic words" in generic.stderr
    taken = run_cli(["unit", "alias", "--unit", "区纪委监委", "--alias", "第一审查室。"], env)
    assert taken.returncode == 1 and "already the name or an alias" in taken.stderr
    assert run_cli(["unit", "alias", "--unit", "第一审查室", "--alias", "一审室"], env).returncode == 0
    assert "aliases=一审室" in run_cli(["unit", "list"], env).stdout

    added = run_cli(["staff", "add", "--name", "王核查", "--role", "investigator", "--unit", "第一审查室"], env)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("tlk_")
    assert run_cli(["staff", "add", "--name", "王核查", "--role", "investigator"], env).returncode == 1
    bad_role = run_cli(["staff", "add", "--name", "x", "--role", "emperor"], env)
    assert bad_role.returncode == 1 and "roles must be among" in bad_role.stderr
    multi = run_cli(["staff", "add", "--name", "李督办", "--role", "supervisor,custodian"], env)
    assert multi.returncode == 0

    with tipline_server(env, tmp_path / "server.log") as server:
        me = httpx.get(f"{server.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["name"] == "王核查" and me.json()["unit"]["name"] == "第一审查室"
        assert run_cli(["staff", "disable", "王核查"], env).returncode == 0
        after = httpx.get(f"{server.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert after.status_code == 401

    listed = run_cli(["staff", "list"], env).stdout
    assert "王核查" in listed and "DISABLED" in listed and "custodian,supervisor" in listed
    assert run_cli(["audit", "verify"], env).returncode == 0
