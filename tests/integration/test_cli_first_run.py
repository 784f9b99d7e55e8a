"""First run: every `tipline` command group on a data directory that does not exist yet either works or says
in one line what to run first — an exit code and one line on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TIPLINE = Path(sys.executable).parent / "tipline"

# (arguments, expected exit code, a piece of the one line the operator reads: stdout when 0, else stderr)
COMMANDS = [
    (["db", "upgrade"], 0, "database at"),
    (["db", "current"], 0, "empty"),
    (["db", "roles"], 2, "PostgreSQL"),
    (["audit", "verify"], 0, "audit trail intact"),
    (["unit", "add", "--name", "区纪委监委"], 0, "created unit"),
    (["unit", "list"], 0, ""),
    (["staff", "add", "--name", "张三", "--role", "admin"], 0, "tlk_"),
    (["staff", "list"], 0, ""),
    (["staff", "disable", "张三"], 1, "not found"),
    (["staff", "set-password", "--stdin", "张三"], 1, "not found"),
    (["routing", "list"], 0, ""),
    (["routing", "add", "--handling-unit", "区纪委监委"], 1, "unit not found"),
    (["routing", "disable", "nope"], 1, "no such routing rule"),
    (["deadlines", "list"], 0, "working days"),
    (["deadlines", "remove", "nope"], 1, "not found"),
    (["custody", "list"], 2, "tipline keys init"),
    (["keys", "reencrypt"], 2, "tipline keys init"),
    (["keys", "export-public"], 0, "{}"),
    (["taxonomy", "reload"], 0, "loaded version"),
    (["mail-outbound-key"], 0, "outbound key"),
    (["classify", "export-corrections"], 0, ""),
]


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env["TIPLINE_DATA_DIR"] = str(data_dir)
    return env


@pytest.mark.parametrize(("args", "code", "says"), COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS])
def test_each_command_on_a_fresh_data_dir(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    data_dir = tmp_path / "new" / "var"  # not there yet, nor its parent
    result = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [str(TIPLINE), *args],
        env=_env(data_dir),
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == code, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    if code == 0:
        assert says in result.stdout + result.stderr
    else:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("tipline: ") and says in lines[0], lines[0]


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path / "var") | {"TIPLINE_DATABASE_URL": "postgresql+asyncpg://127.0.0.1:1/none"}
    result = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [str(TIPLINE), "unit", "list"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr
