"""deploy/entrypoint.sh run directly under bash, with fake `tipline` and `id` commands on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.tools import apt, require_executable

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"

FAKE_TIPLINE = """#!/usr/bin/env bash
# Records how it was called; `db current` fails $FAIL_DB_CURRENT times first.
if [[ "$1 $2" == "db current" ]]; then
    count=$(cat "$CALLS.dbcount" 2>/dev/null || echo 0); echo $((count + 1)) > "$CALLS.dbcount"
    (( count < ${FAIL_DB_CURRENT:-0} )) && exit 1
    exit 0
fi
{ echo "ARGS $*"; env | grep '^TIPLINE_' | sort; } >> "$CALLS"
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> dict:
    require_executable("bash", apt("bash"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tipline").write_text(FAKE_TIPLINE)
    (bin_dir / "id").write_text('#!/usr/bin/env bash\necho "${FAKE_UID:-10001}"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(tmp_path / "calls"),
        "TMPDIR": str(tmp),
        "TIPLINE_DATA_DIR": str(tmp_path / "data"),
        "TIPLINE_KEYS_DIR": str(tmp_path / "keys"),
        "TIPLINE_DB_WAIT_SECONDS": "0",
    }
    (tmp_path / "keys").mkdir()
    return {"env": env, "dir": tmp_path}


def run(sandbox: dict, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    result = subprocess.run(  # noqa: S603
        ["bash", str(ENTRYPOINT), *args],  # noqa: S607
        env={**sandbox["env"], **env},
        capture_output=True,
        text=True,
        timeout=20,
    )
    calls = Path(sandbox["env"]["CALLS"])
    return result, calls.read_text() if calls.exists() else ""


def test_a_role_serves_with_its_flags(sandbox: dict) -> None:
    result, calls = run(sandbox, "intake", PORT="9000", TIPLINE_WEB_WORKERS="3")
    assert result.returncode == 0, result.stderr
    assert "ARGS serve --role intake --host 0.0.0.0 --port 9000 --workers 3" in calls


def test_all_runs_every_role_together(sandbox: dict) -> None:
    result, calls = run(sandbox)
    assert result.returncode == 0 and "ARGS serve --host 0.0.0.0 --port 8000" in calls
    assert "--role" not in calls


def test_file_secrets_become_settings_and_the_file_variable_goes(sandbox: dict) -> None:
    secret = sandbox["dir"] / "lookup"
    secret.write_text("s" * 64 + "\n")
    result, calls = run(sandbox, "staff", TIPLINE_LOOKUP_SECRET_FILE=str(secret))
    assert result.returncode == 0, result.stderr
    assert f"TIPLINE_LOOKUP_SECRET={'s' * 64}\n" in calls
    assert "TIPLINE_LOOKUP_SECRET_FILE" not in calls
    assert "s" * 64 not in result.stderr + result.stdout  # never printed


def test_conflicting_or_unreadable_secret_files_are_refused(sandbox: dict) -> None:
    secret = sandbox["dir"] / "lookup"
    secret.write_text("x")
    result, calls = run(sandbox, "intake", TIPLINE_LOOKUP_SECRET_FILE=str(secret), TIPLINE_LOOKUP_SECRET="y")  # noqa: S106
    assert result.returncode == 78 and "both TIPLINE_LOOKUP_SECRET" in result.stderr and calls == ""
    result, _ = run(sandbox, "intake", TIPLINE_DATABASE_URL_FILE=str(sandbox["dir"] / "missing"))
    assert result.returncode == 78


def test_refuses_root(sandbox: dict) -> None:
    result, calls = run(sandbox, "intake", FAKE_UID="0")
    assert result.returncode == 77 and calls == ""


@pytest.mark.parametrize("place", ["keys", "data/custody"])
def test_refuses_to_serve_next_to_an_identity_private_key(sandbox: dict, place: str) -> None:
    folder = sandbox["dir"] / place
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "identity.private.json").write_text("{}")
    for role in ("intake", "mail", "staff", "worker", "all"):
        result, calls = run(sandbox, role)
        assert result.returncode == 78 and "custodial" in result.stderr and calls == "", role


def test_migrate_waits_for_the_database_then_upgrades(sandbox: dict) -> None:
    result, calls = run(sandbox, "migrate", FAIL_DB_CURRENT="2")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("waiting for the database") == 2
    assert calls.startswith("ARGS db upgrade")
    result, _ = run(sandbox, "migrate", FAIL_DB_CURRENT="99", TIPLINE_DB_WAIT_TRIES="3")
    assert result.returncode == 69


def test_unknown_role_and_unwritable_tmp(sandbox: dict) -> None:
    result, _ = run(sandbox, "custodial")
    assert result.returncode == 64 and "unknown role" in result.stderr
    result, _ = run(sandbox, "intake", TMPDIR=str(sandbox["dir"] / "nope"))
    assert result.returncode == 73


def test_passes_other_commands_through(sandbox: dict) -> None:
    result, calls = run(sandbox, "tipline", "audit", "verify")
    assert result.returncode == 0 and "ARGS audit verify" in calls


def test_script_is_executable() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
