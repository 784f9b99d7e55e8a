"""Where the conformance corpus is: real inputs nobody on this project wrote (mail from the mail-parser
project's test suite, files from mat2's), kept in the ``shared/`` folder that is laid beside the
repository, not in it. Default ``../shared/conformance``; TIPLINE_CONFORMANCE_DIR points elsewhere.

Every test reads it through ``conformance_dir`` / ``conformance_files``: when it is missing the test skips
on a developer's machine and fails under CI, with one message saying where the corpus comes from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.tools import missing

ENV = "TIPLINE_CONFORMANCE_DIR"
DEFAULT = REPO_ROOT.parent / "shared" / "conformance"
MAIL = "email/mail-parser"  # raw messages (SpamScope/mail-parser's test suite)


def conformance_root() -> Path:
    configured = os.environ.get(ENV, "").strip()
    return Path(configured).expanduser().resolve() if configured else DEFAULT


def _how() -> str:
    return (
        "the conformance corpus is the conformance/ folder of the project's shared/ folder, laid beside the "
        f"repository (default {DEFAULT}); copy or link it there, or set {ENV} to where it is"
    )


def conformance_dir(relative: str = MAIL) -> Path:
    """A folder of the corpus (default: the conformance mail); skips locally or fails under CI without it."""
    path = conformance_root() / relative
    if not path.is_dir():
        missing(f"conformance corpus folder {path}", _how())
    return path


def conformance_file(name: str, relative: str = MAIL) -> Path:
    path = conformance_dir(relative) / name
    if not path.is_file():
        missing(f"conformance file {path}", _how())
    return path


def conformance_files(pattern: str = "*.eml", relative: str = MAIL) -> list[Path]:
    """The files matching ``pattern``, sorted; at least one, or the test skips (locally) / fails (CI)."""
    files = sorted(conformance_dir(relative).glob(pattern))
    if not files:
        missing(f"conformance files {pattern} in {conformance_root() / relative}", _how())
    return files


def conformance_params(pattern: str = "*.eml", relative: str = MAIL) -> list[object]:
    """For ``pytest.mark.parametrize`` at collection time: the files' names, or one ``missing`` case (an
    empty list would make pytest skip the test silently). Each test resolves its name with
    ``conformance_file``, which reports the missing corpus."""
    folder = conformance_root() / relative
    names = sorted(p.name for p in folder.glob(pattern)) if folder.is_dir() else []
    return names or [pytest.param("(corpus missing)", id="conformance-corpus-missing")]
