"""Compartments at registry scale (issue 19): the first page, opening a clue, assignment and transfer with
rewrapping, on PostgreSQL with N compartmented clues (default 1,000,000), each figure beside a baseline in
the same run.

    export TIPLINE_DATA_DIR=/tmp/bench-comp
    export TIPLINE_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/tipline_bench_compartments
    python bench/bench_compartments.py --fresh --clues 1000000

Generation: a sample of real clues goes in through the real intake and assignment paths (``--sample``
compartmented, a third as many case-key ones: their compartment rows are deleted, so they open with the case
key as clues registered before compartments do), with real wraps (escrow, the supervisors, the handling unit,
the assignee). The bulk copies the sample's rows (clues, states, categories, sealed fields, wraps) under
new ids, spread over the investigators and their units — the bytes are real envelopes of realistic size,
bound to another id, so they are never opened — with COPY, dropping the wrap table's secondary indexes
meanwhile. ``--fresh`` drops and recreates the database first; without it the generation is skipped when
the database already holds the clues.

Measured (p50/p95 over ``--iterations``, in-process ASGI, bearer tokens carrying the holder's key):
- ``first_page``: an investigator's first page (``GET /api/v1/me/clues``), beside the same route with a
  token of the same person that carries no key (no unlock) and the same SELECT through asyncpg; and
  ``authenticate`` alone, with and without the unlock;
- ``open``: ``GET /api/v1/clues/{id}`` of a compartmented clue (unlock, the wraps, the sealed fields), beside
  a case-key clue;
- ``assign`` (another investigator of the same unit) and ``transfer`` (an investigator of another unit), both
  rewrapping, beside the same operations on case-key clues (no rewrap).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNITS = 40
INVESTIGATORS_PER_UNIT = 3
SUPERVISORS = 3
BATCH = 20_000
WRAP_INDEXES = ("ix_clue_key_wraps_clue_id", "ix_clue_key_wraps_key_id")


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _figures(samples: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(samples), 2), "p95": round(_pct(samples, 0.95), 2)}


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _recreate(url: str) -> None:
    import asyncpg

    base, name = _dsn(url).rsplit("/", 1)
    connection = await asyncpg.connect(f"{base}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    upgrade = [sys.executable, "-m", "service", "db", "upgrade"]
    await asyncio.to_thread(subprocess.run, upgrade, check=True, env=os.environ)


async def _world(app, runtime) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Units, supervisors and investigators (each with a personal key and a token carrying it)."""
    from service.auth import service as auth_service

    async def person(name: str, roles: list[str], unit_id: str | None) -> tuple[str, str]:
        async with runtime.session_factory() as session:
            staff, personal = await auth_service.add_staff(
                session, name=name, roles=roles, unit_id=unit_id, actor="bench", keys=runtime.keys
            )
            _, token = await auth_service.issue_token(
                session, staff=staff, ttl_days=1, actor="bench", personal=personal
            )
            await session.commit()
            return staff.id, token

    async with runtime.session_factory() as session:
        office = await auth_service.add_unit(
            session, name="基准案管室", kind="other", parent_id=None, actor="bench"
        )
        units = [
            await auth_service.add_unit(
                session, name=f"基准第{n}室", kind="other", parent_id=None, actor="bench"
            )
            for n in range(UNITS)
        ]
        await session.commit()
        office_id, unit_ids = office.id, [u.id for u in units]
    supervisors = [await person(f"基准督办{n}", ["supervisor"], office_id) for n in range(SUPERVISORS)]
    investigators: list[tuple[str, str, str]] = []
    for n, unit_id in enumerate(unit_ids):
        for m in range(INVESTIGATORS_PER_UNIT):
            staff_id, token = await person(f"基准核查{n}-{m}", ["investigator"], unit_id)
            investigators.append((staff_id, token, unit_id))
    # Each member's first request seals the waiting unit-key grants (as in service).
    for _, token, _ in investigators:
        assert (await app.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    return {"supervisors": supervisors, "investigators": investigators, "units": unit_ids}


TEXTS = [
    "城关派出所副所长收了开发商二十万，帮忙把强拆的报警压下来，不出警。",
    "交警大队民警吃拿卡要，开车被扣后要交两千块好处费才放车。",
    "区法院执行局执行员和被执行人吃饭，案子一直拖着不执行。",
    "看守所管教民警给在押人员传递纸条，收了家属的钱。",
]


async def _sample(app, world, compartmented: int, case_key: int) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Real clues through intake and assignment; the case-key ones lose their compartment rows."""
    from sqlalchemy import delete, select

    from service.compartments.models import ClueKeyWrap, ClueSealed
    from service.registry.models import Clue

    (_, supervisor), investigator = world["supervisors"][0], world["investigators"][0]
    made: list[str] = []
    runtime = app.runtime
    for n in range(compartmented + case_key):
        response = await app.post(
            "/api/v1/tips",
            json={"text": TEXTS[n % len(TEXTS)] + f"（{n}）", "accused": {"name": f"某{n}", "unit": "某局"}},
        )
        assert response.status_code == 201, response.text
        async with runtime.session_factory() as session:
            clue_id = await session.scalar(
                select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
            )
        assigned = await app.post(
            f"/api/v1/clues/{clue_id}/assign",
            headers={"Authorization": f"Bearer {supervisor}"},
            json={"assignee_id": investigator[0]},
        )
        assert assigned.status_code == 200, assigned.text
        made.append(clue_id)
    plain = made[compartmented:]
    async with runtime.session_factory() as session:
        await session.execute(delete(ClueKeyWrap).where(ClueKeyWrap.clue_id.in_(plain)))
        await session.execute(delete(ClueSealed).where(ClueSealed.clue_id.in_(plain)))
        await session.commit()
    return {"compartmented": made[:compartmented], "case_key": plain}


async def _bulk(dsn: str, total: int, sample: list[str], world: dict[str, object]) -> float:
    """Copies of the sample's rows under new ids, spread over the investigators; returns seconds."""
    import asyncpg

    from service.platform.db import new_id

    started = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        investigators = world["investigators"]
        assert isinstance(investigators, list)
        active = "SELECT owner_id, key_id FROM compartment_keys WHERE owner_kind = $1 AND retired_at IS NULL"
        unit_keys = dict(await connection.fetch(active, "unit"))
        staff_keys = dict(await connection.fetch(active, "staff"))

        async def rows(table: str) -> tuple[list[str], dict[str, list[asyncpg.Record]]]:
            query = f"SELECT * FROM {table} WHERE clue_id = ANY($1::varchar[])"  # noqa: S608 - our table names
            found = await connection.fetch(query, sample)
            by_clue: dict[str, list[asyncpg.Record]] = {}
            for row in found:
                by_clue.setdefault(row["clue_id"], []).append(row)
            columns = list(found[0].keys()) if found else []
            return columns, by_clue

        clue_rows = await connection.fetch("SELECT * FROM clues WHERE id = ANY($1::varchar[])", sample)
        clue_columns = list(clue_rows[0].keys())
        tables = {
            name: await rows(name)
            for name in ("clue_states", "clue_categories", "clue_sealed", "clue_key_wraps")
        }
        for index in WRAP_INDEXES:
            await connection.execute(f"DROP INDEX IF EXISTS {index}")
        now = clue_rows[0]["received_at"]
        done = 0
        while done < total:
            size = min(BATCH, total - done)
            out: dict[str, list[tuple[object, ...]]] = {name: [] for name in ("clues", *tables)}
            for n in range(done, done + size):
                source = clue_rows[n % len(clue_rows)]
                staff_id, _, unit_id = investigators[n % len(investigators)]
                clue_id = new_id()
                received = now - timedelta(hours=n // 25)  # anonymous reports keep the hour
                values = dict(source)
                values.update(
                    id=clue_id,
                    registry_number=f"JZ-{n:09d}",
                    received_at=received,
                    registered_at=received,
                    due_at=received + timedelta(days=30 + n % 60),
                    assignee_id=staff_id,
                    handling_unit_id=unit_id,
                    assigned_at=received,
                )
                out["clues"].append(tuple(values[c] for c in clue_columns))
                for name, (columns, by_clue) in tables.items():
                    for row in by_clue.get(source["id"], []):
                        values = dict(row)
                        values["clue_id"] = clue_id
                        if name == "clue_key_wraps":
                            values["id"] = new_id()
                            if values["reason"] == "assignee":
                                values["key_id"] = staff_keys[staff_id]
                            elif values["reason"] == "unit":
                                values["key_id"] = unit_keys[unit_id]
                        out[name].append(tuple(values[c] for c in columns))
            async with connection.transaction():
                await connection.copy_records_to_table("clues", records=out["clues"], columns=clue_columns)
                for name, (columns, _) in tables.items():
                    if out[name]:
                        await connection.copy_records_to_table(name, records=out[name], columns=columns)
            done += size
            print(f"  {done:,} clues ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        await connection.execute("CREATE INDEX ix_clue_key_wraps_clue_id ON clue_key_wraps (clue_id)")
        await connection.execute("CREATE INDEX ix_clue_key_wraps_key_id ON clue_key_wraps (key_id)")
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return time.perf_counter() - started


async def _timed(call, iterations: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for n in range(iterations + 4):  # an even number of calls: assign/transfer end where they started
        started = time.perf_counter()
        await call(n)
        if n >= 4:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _measure(app, world, sample: dict[str, list[str]], dsn: str, iterations: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import asyncpg

    (_, supervisor) = world["supervisors"][0]
    investigators = world["investigators"]
    reader_id, reader, reader_unit = investigators[0]
    same_unit = [i for i in investigators if i[2] == reader_unit and i[0] != reader_id][0]
    other_unit = [i for i in investigators if i[2] != reader_unit][0]
    as_reader = {"Authorization": f"Bearer {reader}"}
    as_supervisor = {"Authorization": f"Bearer {supervisor}"}

    from sqlalchemy import select

    from service.auth import service as auth_service
    from service.registry.models import Clue

    async with app.runtime.session_factory() as session:
        elsewhere = await session.scalars(
            select(Clue.id).where(
                Clue.id.in_(sample["compartmented"] + sample["case_key"]), Clue.assignee_id != reader_id
            )
        )
        for clue_id in list(elsewhere):  # an interrupted earlier run left it with someone else
            back = await app.post(
                f"/api/v1/clues/{clue_id}/assign", headers=as_supervisor, json={"assignee_id": reader_id}
            )
            assert back.status_code == 200, back.text
    async with app.runtime.session_factory() as session:
        # The same person's token without their key (as an administrator issues one): the same route and
        # query without the per-request unlock (token wrap, unit-key grants, due rotations).
        staff = await auth_service.get_staff(session, reader_id)
        _, keyless = await auth_service.issue_token(session, staff=staff, ttl_days=1, actor="bench")
        await session.commit()

    def page_as(token: str):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {token}"}

        async def call(_: int) -> None:
            response = await app.get("/api/v1/me/clues", headers=headers, params={"limit": 50})
            assert response.status_code == 200, response.text

        return call

    def unlock_as(token: str):  # type: ignore[no-untyped-def]
        async def call(_: int) -> None:
            async with app.runtime.session_factory() as session:
                await auth_service.authenticate(session, token)

        return call

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

        async def raw(_: int) -> None:
            found = await statement.fetch(reader_id)
            await categories.fetch([r["id"] for r in found])

        result: dict[str, object] = {
            "assigned_to_investigator": await connection.fetchval(
                "SELECT count(*) FROM clues WHERE assignee_id = $1", reader_id
            ),
            "clues": await connection.fetchval("SELECT count(*) FROM clues"),
            "wraps": await connection.fetchval("SELECT count(*) FROM clue_key_wraps"),
        }
        result["first_page_ms"] = {
            "api": _figures(await _timed(page_as(reader), iterations)),
            "baseline_api_token_without_key": _figures(await _timed(page_as(keyless), iterations)),
            "baseline_asyncpg_select": _figures(await _timed(raw, iterations)),
        }
        result["authenticate_ms"] = {
            "token_with_key": _figures(await _timed(unlock_as(reader), iterations)),
            "baseline_token_without_key": _figures(await _timed(unlock_as(keyless), iterations)),
        }
    finally:
        await connection.close()

    def opener(ids: list[str]):  # type: ignore[no-untyped-def]
        async def call(n: int) -> None:
            response = await app.get(f"/api/v1/clues/{ids[n % len(ids)]}", headers=as_reader)
            assert response.status_code == 200, response.text

        return call

    result["open_ms"] = {
        "compartmented": _figures(await _timed(opener(sample["compartmented"]), iterations)),
        "baseline_case_key": _figures(await _timed(opener(sample["case_key"]), iterations)),
    }

    def assigner(ids: list[str], target: tuple[str, str, str]):  # type: ignore[no-untyped-def]
        # Moves each clue from the reader to the target and back: every call rewraps (or, for a case-key
        # clue, does the same assignment without wraps).
        async def call(n: int) -> None:
            clue_id = ids[(n // 2) % len(ids)]
            to = target[0] if n % 2 == 0 else reader_id
            response = await app.post(
                f"/api/v1/clues/{clue_id}/assign", headers=as_supervisor, json={"assignee_id": to}
            )
            assert response.status_code == 200, response.text

        return call

    rounds = iterations - iterations % 2
    result["assign_same_unit_ms"] = {
        "compartmented_rewrap": _figures(await _timed(assigner(sample["compartmented"], same_unit), rounds)),
        "baseline_case_key": _figures(await _timed(assigner(sample["case_key"], same_unit), rounds)),
    }
    result["transfer_other_unit_ms"] = {
        "compartmented_rewrap": _figures(await _timed(assigner(sample["compartmented"], other_unit), rounds)),
        "baseline_case_key": _figures(await _timed(assigner(sample["case_key"], other_unit), rounds)),
    }
    result["iterations"] = iterations
    return result


async def run(args: argparse.Namespace) -> dict[str, object]:
    import httpx
    from sqlalchemy import func, select

    from service.app.main import create_app
    from service.platform.settings import load_settings
    from service.registry.models import Clue

    settings = load_settings()
    url = settings.effective_database_url
    if not url.startswith("postgresql"):
        raise SystemExit("PostgreSQL only: set TIPLINE_DATABASE_URL")
    state = Path(settings.data_dir) / "bench-compartments.json"
    if args.fresh:
        await _recreate(url)
        state.unlink(missing_ok=True)
    report: dict[str, object] = {}
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            client.runtime = runtime  # type: ignore[attr-defined]
            if not state.exists():
                started = time.perf_counter()
                world = await _world(client, runtime)
                sample = await _sample(client, world, args.sample, max(2, args.sample // 3))
                report["sample_seconds"] = round(time.perf_counter() - started, 1)
                bulk = max(0, args.clues - args.sample - max(2, args.sample // 3))
                report["bulk_seconds"] = round(
                    await _bulk(_dsn(url), bulk, sample["compartmented"], world), 1
                )
                state.write_text(json.dumps({"world": world, "sample": sample}))
            saved = json.loads(state.read_text())
            world, sample = saved["world"], saved["sample"]
            world["supervisors"] = [tuple(s) for s in world["supervisors"]]
            world["investigators"] = [tuple(i) for i in world["investigators"]]
            async with runtime.session_factory() as session:
                report["clues_in_database"] = await session.scalar(select(func.count()).select_from(Clue))
            report.update(await _measure(client, world, sample, _dsn(url), args.iterations))
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clues", type=int, default=1_000_000, help="compartmented clues in the database")
    parser.add_argument(
        "--sample", type=int, default=60, help="real compartmented clues (the rest are copies)"
    )
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database, then generate")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
