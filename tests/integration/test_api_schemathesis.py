"""Schemathesis against the OpenAPI schema (issue 9): every operation, bounded examples, as a supervisor and
anonymously, through the ASGI app, on both databases. No 5xx; every response conforms to its schema.

The app here is its own (own data directory and database): Schemathesis runs the ASGI lifespan on a loop of
its own, so it cannot share the session harness's engine.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app.main import create_app
from tests.helpers.app import cli_env, make_settings, run_cli
from tests.helpers.database import create_pg_database, drop_pg_database

MAX_EXAMPLES = 20  # per operation as a supervisor
ANONYMOUS_EXAMPLES = 5  # anonymous calls to staff operations stop at authentication, whatever the input
# Recordings and scanned pages are raw bodies (audio/*, image/*), sent as bytes like application/octet-stream.
schemathesis.serializer.alias(["audio/mpeg", "image/jpeg"], "application/octet-stream")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{data_dir / 'fuzz.db'}"
    else:
        url = asyncio.run(create_pg_database())
    env = cli_env(data_dir, url)
    migrated = run_cli(["db", "upgrade"], env)
    assert migrated.returncode == 0, migrated.stderr
    added = run_cli(["staff", "add", "--name", f"督办-{uuid.uuid4().hex[:6]}", "--role", "supervisor"], env)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    # Wrong receipt codes are slowed down on purpose (floor and per-client back-off; see the flood test):
    # off here, or the two receipt operations alone would take minutes.
    relaxed = {"TIPLINE_WEB_LOOKUP_FLOOR_SECONDS": "0", "TIPLINE_WEB_LOOKUP_FREE_FAILURES": "1000000"}
    saved = {k: os.environ.get(k) for k in relaxed}
    os.environ.update(relaxed)
    try:
        app = create_app(make_settings(data_dir, url))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield schemathesis.openapi.from_asgi("/openapi.json", app), token
    if request.param == "postgresql":
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()
        asyncio.run(drop_pg_database(url))


def _run(schema, headers: dict[str, str], examples: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Every operation, up to MAX_EXAMPLES cases each; the failures as text."""
    failures: list[str] = []
    timings: list[tuple[float, str]] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't minimise
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, checks=CHECKS)

        began = time.monotonic()
        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
        timings.append((time.monotonic() - began, f"{operation.method.upper()} {operation.path}"))
    print("slowest:", sorted(timings, reverse=True)[:5])
    return failures


def test_every_operation_as_a_supervisor(fuzzed) -> None:  # type: ignore[no-untyped-def]
    schema, token = fuzzed
    failures = _run(schema, {"Authorization": f"Bearer {token}"}, MAX_EXAMPLES)
    assert failures == [], "\n\n".join(failures)


def test_every_operation_anonymously(fuzzed) -> None:  # type: ignore[no-untyped-def]
    schema, _ = fuzzed
    failures = _run(schema, {}, ANONYMOUS_EXAMPLES)
    assert failures == [], "\n\n".join(failures)
