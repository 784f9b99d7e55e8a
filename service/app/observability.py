"""Watching a running Tipline without watching the people who use it.

- Logs: one JSON object per line, with the request id of the request being served. There is no field for an
  address, a path with parameters, a header or a body; exceptions are logged as their type and frames only,
  because exception messages can carry input.
- Metrics (Prometheus, ``/metrics`` on the staff side only): every label value comes from a fixed set in code
  (channel, source, category id, job task name, HTTP method, route *template*, status code). Counts of clues,
  classification outcomes, queue depths and overdue clues are read from the database at scrape time, so they
  are right for the whole deployment however many intake processes run.
- Probes: ``/livez`` (the process turns; for the worker role, its loop too) and ``/readyz`` (the database
  answers), on every role.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import secrets
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.jobs import service as jobs_service
from service.platform.timeutil import utcnow
from service.registry import models as registry_models

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# ---------------------------------------------------------------------------------------------- logging

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_SAFE_TYPES = (str, int, float, bool, type(None))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_") or key in entry:
                continue
            if isinstance(value, _SAFE_TYPES) or (
                isinstance(value, list | tuple) and all(isinstance(v, _SAFE_TYPES) for v in value)
            ):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["exc_type"] = exc_type.__name__
            # Frames, never the message: messages can quote input.
            entry["frames"] = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)][-8:]
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on stderr for the service and uvicorn; uvicorn's access log stays off (it would record
    client addresses)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------- metrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # never the raw path: paths can carry receipt codes and ids


@dataclass
class Snapshot:
    clues: list[tuple[str, str, int]] = field(default_factory=list)  # channel, source, count
    outcomes: list[tuple[str, int]] = field(default_factory=list)  # classified | needs_triage
    categories: list[tuple[str, int]] = field(default_factory=list)
    jobs: list[tuple[str, str, int]] = field(default_factory=list)
    overdue: int = 0
    scrape_seconds: float = 0.0


class DatabaseCollector:
    """Yields the last snapshot read from the database (``refresh`` is async; collectors are not)."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    async def refresh(self, session_factory: Any) -> None:

        Clue, ClueCategory = registry_models.Clue, registry_models.ClueCategory
        closed = getattr(registry_models, "CLOSED_STATUSES", ("concluded", "archived"))
        started = time.monotonic()
        snap = Snapshot()
        async with session_factory() as session:
            rows = await session.execute(
                select(Clue.channel, Clue.source, func.count()).group_by(Clue.channel, Clue.source)
            )
            snap.clues = [(c, s, n) for c, s, n in rows.all()]
            rows = await session.execute(select(Clue.needs_triage, func.count()).group_by(Clue.needs_triage))
            snap.outcomes = [("needs_triage" if t else "classified", n) for t, n in rows.all()]
            rows = await session.execute(
                select(ClueCategory.category, func.count()).group_by(ClueCategory.category)
            )
            snap.categories = [(c, n) for c, n in rows.all()]
            snap.overdue = (
                await session.execute(
                    select(func.count()).where(Clue.due_at < utcnow(), Clue.status.not_in(closed))
                )
            ).scalar_one()
            snap.jobs = await jobs_service.depths(session)
            await session.rollback()
        snap.scrape_seconds = time.monotonic() - started
        self.snapshot = snap

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        registered = CounterMetricFamily(
            "tipline_clues_registered",
            "Clues registered, by channel and source",
            labels=["channel", "source"],
        )
        for channel, source, count in snap.clues:
            registered.add_metric([channel, source], count)
        yield registered
        outcomes = GaugeMetricFamily(
            "tipline_classification_outcomes", "Clues by classification outcome", labels=["outcome"]
        )
        for outcome, count in snap.outcomes:
            outcomes.add_metric([outcome], count)
        yield outcomes
        categories = GaugeMetricFamily(
            "tipline_clue_categories", "Clues carrying each category label", labels=["category"]
        )
        for category, count in snap.categories:
            categories.add_metric([category], count)
        yield categories
        jobs = GaugeMetricFamily(
            "tipline_jobs", "Background jobs by task and status", labels=["task", "status"]
        )
        for task, status, count in snap.jobs:
            jobs.add_metric([task, status], count)
        yield jobs
        yield GaugeMetricFamily("tipline_clues_overdue", "Open clues past their due date", value=snap.overdue)
        yield GaugeMetricFamily(
            "tipline_metrics_scrape_seconds",
            "Time spent reading the database for this scrape",
            value=snap.scrape_seconds,
        )


class Metrics:
    """One registry per app, so several apps in one process (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "tipline_http_request_duration_seconds",
            "Request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.database = DatabaseCollector()
        self.registry.register(self.database)  # type: ignore[arg-type]


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestObserver:
    """Pure ASGI middleware: a fresh request id per request (a client's own id is ignored: it could be a
    tracking token), the ``X-Request-ID`` response header, and latency by route template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.latency.labels(scope["method"], route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )
            request_id_var.reset(token)


# ---------------------------------------------------------------------------------------------- routes

probes = APIRouter(include_in_schema=False)


@probes.get("/livez")
async def livez(request: Request) -> JSONResponse:
    worker = getattr(request.app.state, "worker", None)
    if worker is not None and worker.stalled():
        return JSONResponse({"status": "stalled", "component": "worker"}, status_code=503)
    return JSONResponse({"status": "ok"})


@probes.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    try:
        async with asyncio.timeout(2.0):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logging.getLogger("tipline.probes").warning("database not ready", extra={"error": type(exc).__name__})
        return JSONResponse({"status": "unavailable", "component": "database"}, status_code=503)
    return JSONResponse({"status": "ready"})


metrics_router = APIRouter(include_in_schema=False)


@metrics_router.get("/metrics")
async def metrics(request: Request) -> Response:
    settings = request.app.state.runtime.settings
    expected = getattr(settings, "metrics_token", None)
    if expected is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected.get_secret_value()}".encode()):
            return JSONResponse(
                {
                    "error": {
                        "code": "unauthenticated",
                        "message": "需要监控令牌",
                        "message_en": "metrics token required",
                    }
                },
                status_code=401,
            )
    observed: Metrics = request.app.state.metrics
    await observed.database.refresh(request.app.state.runtime.session_factory)
    return Response(generate_latest(observed.registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, roles: frozenset[str]) -> Metrics:
    """Probes on every role, ``/metrics`` on the staff role, the request observer on all."""
    observed = Metrics()
    app.state.metrics = observed
    app.include_router(probes)
    if "staff" in roles:
        app.include_router(metrics_router)
    app.add_middleware(RequestObserver, metrics=observed)
    return observed
