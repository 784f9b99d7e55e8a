"""One rule for tests that need something from outside the project (a tool, a module, a data folder):
when it is missing the test skips on a developer's machine and fails under CI, with one message saying what
is missing and how to get it. CI is any true value of ``CI`` ("true", "1", "yes", "on")."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

TRUE_VALUES = {"1", "true", "yes", "on", "y", "t"}
PIP = "pip install -e '.[test]' (scripts/test.sh installs the test extras)"


def apt(package: str) -> str:
    return f"apt-get install {package} (scripts/test.sh installs it when run as root)"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in TRUE_VALUES


def missing(what: str, how: str) -> NoReturn:
    """Skip (locally) or fail (under CI) because ``what`` is not there; ``how`` says how to get it."""
    message = f"{what} is missing; {how}"
    if under_ci():
        pytest.fail(f"{message} (required under CI, where nothing may be skipped)", pytrace=False)
    pytest.skip(message)


def require_executable(name: str, how: str) -> str:
    """The path of a command: on PATH, or beside this Python (a pip-installed tool in the virtualenv)."""
    found = shutil.which(name)
    if found is None:
        beside = Path(sys.executable).parent / name
        if beside.exists():
            found = str(beside)
    if found is None:
        missing(f"the `{name}` command", how)
    return found


def optional_executable(name: str, how: str) -> str | None:
    """For a test that does more with the command and still checks the rest without it: the path, or None
    locally; under CI a missing command fails the test."""
    found = shutil.which(name) or (
        str(Path(sys.executable).parent / name) if (Path(sys.executable).parent / name).exists() else None
    )
    if found is None and under_ci():
        missing(f"the `{name}` command", how)
    return found


def require_module(name: str, how: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module `{name}`", how)


def require_path(path: Path, what: str, how: str) -> Path:
    if not path.exists():
        missing(f"{what} ({path})", how)
    return path
