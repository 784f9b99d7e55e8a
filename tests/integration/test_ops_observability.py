"""Metrics, probes, request ids and JSON logs — with no personal data anywhere in them."""

from __future__ import annotations

import io
import json
import logging
import re

from service.app import observability
from service.platform.db import create_engine
from tests.helpers.app import Harness

PRIVATE_NAME = "赵观察"
PRIVATE_TEXT = "观测专用举报内容收了红包压案不查"


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_count_intake_and_latency_without_personal_data(harness: Harness) -> None:
    before = (await harness.client.get("/metrics")).text
    base = _sample(before, "tipline_clues_registered_total", channel="web", source="public_report") or 0.0
    response = await harness.client.post(
        "/api/v1/tips",
        json={"text": PRIVATE_TEXT, "accused": {"name": PRIVATE_NAME, "unit": "某派出所"}},
        headers={"X-Forwarded-For": "203.0.113.77", "X-Request-ID": "client-chosen-id"},
    )
    assert response.status_code == 201, response.text
    receipt = response.json()["receipt"].replace(" ", "")
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])  # ours, not the client's
    await harness.client.get(f"/api/v1/receipts/{receipt}")  # a path holding a receipt code

    scrape = await harness.client.get("/metrics")
    assert scrape.status_code == 200
    body = scrape.text
    assert _sample(body, "tipline_clues_registered_total", channel="web", source="public_report") == base + 1
    assert _sample(body, "tipline_http_request_duration_seconds_count", route="/api/v1/tips", method="POST")
    assert _sample(body, "tipline_classification_outcomes") is not None
    assert _sample(body, "tipline_clues_overdue") is not None
    assert "tipline_jobs" in body
    for private in (PRIVATE_NAME, PRIVATE_TEXT, receipt, "203.0.113.77", "client-chosen-id", "127.0.0.1"):
        assert private not in body
    assert 'route="unmatched"' in body or "/api/v1/receipts/{" in body


async def test_probes(harness: Harness) -> None:
    live = await harness.client.get("/livez")
    ready = await harness.client.get("/readyz")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readyz_fails_when_the_database_is_unreachable(harness: Harness) -> None:
    runtime = harness.runtime
    real = runtime.engine
    runtime.engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        response = await harness.client.get("/readyz")
    finally:
        await runtime.engine.dispose()
        runtime.engine = real
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "component": "database"}


async def test_metrics_token_when_configured(harness: Harness) -> None:
    from pydantic import SecretStr

    settings = harness.runtime.settings
    harness.runtime.settings = settings.model_copy(update={"metrics_token": SecretStr("m" * 32)})
    try:
        assert (await harness.client.get("/metrics")).status_code == 401
        ok = await harness.client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
        assert ok.status_code == 200
    finally:
        harness.runtime.settings = settings


async def test_json_logs_carry_the_request_id_and_never_exception_messages(harness: Harness) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    logger = logging.getLogger("tipline.test-ops")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = observability.request_id_var.set("abcd1234abcd1234")
        try:
            raise ValueError(PRIVATE_TEXT)
        except ValueError:
            logger.exception("failed", extra={"clue": "id-1", "obj": object()})
        finally:
            observability.request_id_var.reset(token)
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue().strip())
    assert entry["request_id"] == "abcd1234abcd1234"
    assert entry["msg"] == "failed" and entry["clue"] == "id-1" and entry["exc_type"] == "ValueError"
    assert "obj" not in entry  # only plain values pass
    assert PRIVATE_TEXT not in stream.getvalue()


async def test_only_the_staff_side_serves_metrics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from service.app.main import create_app
    from tests.helpers.app import make_settings

    app = create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db"), frozenset({"intake"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as client:
            assert (await client.get("/metrics")).status_code == 404
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/livez")).status_code == 200
