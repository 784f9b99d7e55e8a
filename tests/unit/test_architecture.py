"""The dependency rule of docs/architecture.md, checked with import-linter (the contract in pyproject.toml):
edges above domains, domains above the platform, no import pointing up, no circle between packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_layers_contract_holds() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")  # installed with the test extras
    result = subprocess.run(  # noqa: S603 - our own tool and a fixed argument list
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_settings_reference_is_generated_from_the_one_settings() -> None:
    from service.platform.settings import settings_markdown

    reference = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert reference == settings_markdown(), "regenerate docs/settings.md from settings_markdown()"
