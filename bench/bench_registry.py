"""Registry benchmarks on a seeded database (see docs/registry.md for the figures and how to run them).

    export TIPLINE_DATA_DIR=/tmp/bench-reg
    export TIPLINE_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/tipline_bench_registry
    python -m service db upgrade && python -m service dev seed --clues 1000000
    python bench/bench_registry.py all

Each figure stands beside a baseline measured in the same run:
- ``page``: an investigator's first page of assigned clues through the HTTP API (in-process ASGI, token auth,
  the real route) at p50/p95, beside the same SELECT run directly through asyncpg;
- ``stats``: the statistics overview (and the overdue view and the monthly/handling-time trends), beside a
  bare ``count(*)``;
- ``export``: the ledger as xlsx for N rows (default 100,000), time and peak RSS of a fresh process, beside
  CSV of the same rows, and beside streaming the rows alone and openpyxl writing as many rows alone. The
  ledger decrypts nothing (compartments): plain columns only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _settings():  # type: ignore[no-untyped-def]
    from service.platform.settings import load_settings

    return load_settings()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def bench_page(iterations: int) -> dict[str, object]:
    import asyncpg
    import httpx
    from sqlalchemy import func, select

    from service.app.main import create_app
    from service.auth import service as auth_service
    from service.auth.models import Staff
    from service.registry.models import Clue

    settings = _settings()
    app = create_app(settings, frozenset({"staff"}))
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with runtime.session_factory() as session:
            # The busiest seeded investigator: the worst case for the first page.
            staff_id, assigned = (
                await session.execute(
                    select(Clue.assignee_id, func.count())
                    .where(Clue.assignee_id.is_not(None))
                    .group_by(Clue.assignee_id)
                    .order_by(func.count().desc())
                    .limit(1)
                )
            ).one()
            staff = await session.get(Staff, staff_id)
            _, token = await auth_service.issue_token(session, staff=staff, ttl_days=1, actor="bench")
            await session.commit()
        transport = httpx.ASGITransport(app=app)
        api: list[float] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            headers = {"Authorization": f"Bearer {token}"}
            for n in range(iterations + 10):
                started = time.perf_counter()
                response = await client.get("/api/v1/me/clues", headers=headers, params={"limit": 50})
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if n >= 10:
                    api.append(elapsed * 1000)
    raw: list[float] = []
    dsn = settings.effective_database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        statement = await connection.prepare(
            "SELECT c.id, c.registry_number, c.source, c.channel, c.status, c.needs_triage, c.real_name,"
            " c.received_at, c.due_at, c.assignee_id, c.handling_unit_id FROM clues c"
            " WHERE c.assignee_id = $1 ORDER BY c.due_at, c.id LIMIT 51"
        )
        categories = await connection.prepare(
            "SELECT clue_id, category FROM clue_categories WHERE clue_id = ANY($1::varchar[])"
        )
        for n in range(iterations + 10):
            started = time.perf_counter()
            rows = await statement.fetch(staff_id)
            await categories.fetch([r["id"] for r in rows])
            elapsed = time.perf_counter() - started
            if n >= 10:
                raw.append(elapsed * 1000)
    finally:
        await connection.close()
    return {
        "assigned_to_investigator": assigned,
        "api_ms": {"p50": round(statistics.median(api), 2), "p95": round(_pct(api, 0.95), 2)},
        "asyncpg_ms": {"p50": round(statistics.median(raw), 2), "p95": round(_pct(raw, 0.95), 2)},
        "iterations": iterations,
    }


async def bench_stats(iterations: int) -> dict[str, object]:
    from sqlalchemy import func, select

    from service.platform.db import create_engine, create_session_factory
    from service.registry import stats
    from service.registry.models import Clue

    settings = _settings()
    engine = create_engine(settings.effective_database_url)
    factory = create_session_factory(engine)
    overview: list[float] = []
    overdue: list[float] = []
    trends: list[float] = []
    count: list[float] = []
    try:
        for _ in range(iterations):
            async with factory() as session:
                started = time.perf_counter()
                total = await session.scalar(select(func.count()).select_from(Clue))
                count.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await stats.overview(session)
                overview.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await stats.overdue_by_unit_and_handler(session)
                overdue.append((time.perf_counter() - started) * 1000)
            async with factory() as session:
                started = time.perf_counter()
                await stats.trends(session)
                trends.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    return {
        "clues": total,
        "overview_ms_median": round(statistics.median(overview), 1),
        "overdue_ms_median": round(statistics.median(overdue), 1),
        "trends_ms_median": round(statistics.median(trends), 1),
        "count_star_ms_median": round(statistics.median(count), 1),
    }


async def export_once(fmt: str, rows: int) -> dict[str, object]:
    from service.app.runtime import build_runtime
    from service.auth.service import Principal
    from service.registry import ledger
    from service.registry.service import ClueFilters

    settings = _settings()
    runtime = build_runtime(settings, frozenset({"staff"}))
    principal = Principal(
        staff_id="bench",
        name="bench",
        unit_id=None,
        roles=frozenset({"supervisor"}),
        token_id="bench",  # noqa: S106 - not a secret
    )
    try:
        async with runtime.session_factory() as session:
            started = time.perf_counter()
            export = await ledger.export_ledger(
                session,
                filters=ClueFilters(),
                fmt=fmt,
                principal=principal,
                limit=rows,
            )
            elapsed = time.perf_counter() - started
            await session.rollback()  # a benchmark leaves no audit entry behind
        size = export.path.stat().st_size
        export.cleanup()
    finally:
        await runtime.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "format": fmt,
        "rows": export.rows,
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(peak_mb),
        "bytes": size,
    }


async def export_parts(rows: int) -> dict[str, object]:
    """Where an export's time goes: streaming the rows alone, and openpyxl writing the same number of
    typical rows alone."""
    import tempfile

    from openpyxl import Workbook
    from sqlalchemy import select

    from service.app.runtime import build_runtime
    from service.registry.models import Clue

    runtime = build_runtime(_settings(), frozenset({"staff"}))
    streamed = 0
    try:
        async with runtime.session_factory() as session:
            started = time.perf_counter()
            query = (
                select(Clue.id, Clue.accused_unit_id)
                .order_by(Clue.received_at.desc(), Clue.id.desc())
                .limit(rows)
            )
            result = await session.stream(query.execution_options(yield_per=1000))
            async for batch in result.partitions(1000):
                streamed += len(batch)
            stream_seconds = time.perf_counter() - started
    finally:
        await runtime.close()
    row = [
        "LG-2026-000001",
        "群众举报",
        "网络",
        "2026-11-26 10:00",
        "系统自动登记",
        None,
        "城东派出所",
        None,
    ]
    row += [
        None,
        None,
        "反映城东派出所有关人员涉嫌违反防止干预司法问题",
        "interference",
        "匿名",
        "否",
    ]
    row += ["区纪委监委", "inv-1", "初步核实", None, "2026-12-26", "否", None, "已处置", None, None]
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("x")
        for _ in range(rows):
            sheet.append(row)
        workbook.save(f"{directory}/x.xlsx")
        openpyxl_seconds = time.perf_counter() - started
    return {
        "rows": streamed,
        "stream_rows_s": round(stream_seconds, 2),
        "openpyxl_write_only_s": round(openpyxl_seconds, 2),
    }


def bench_export(rows: int) -> list[dict[str, object]]:
    """Each format in a fresh process, so peak RSS is that export's own."""
    results = []
    for fmt in ("csv", "xlsx"):
        output = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, __file__, "export-once", "--format", fmt, "--rows", str(rows)],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ,
        )
        results.append(json.loads(output.stdout.strip().splitlines()[-1]))
    results.append(asyncio.run(export_parts(rows)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["page", "stats", "export", "export-once", "all"])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", default="xlsx")
    args = parser.parse_args()
    if args.what == "export-once":
        print(json.dumps(asyncio.run(export_once(args.format, args.rows))))
        return
    report: dict[str, object] = {}
    if args.what in ("page", "all"):
        report["investigator_first_page"] = asyncio.run(bench_page(args.iterations))
    if args.what in ("stats", "all"):
        report["statistics"] = asyncio.run(bench_stats(max(3, args.iterations // 40)))
    if args.what in ("export", "all"):
        report["export"] = bench_export(args.rows)
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
