# ruff: noqa: S603, S607, S311, S108, ASYNC109, ASYNC110, ASYNC220, ASYNC221, ASYNC230, ASYNC240, ASYNC251
"""Scaling on this machine (docs/scaling.md).

Part 1 — intake throughput against one PostgreSQL (the local server on 127.0.0.1:5432, a fresh database) as
`tipline serve --role intake --workers N` grows 1..4. The load comes from a separate process (this file with
``--drive``: httpx + asyncio, closed loop, fixed concurrency, fixed duration). CPU seconds are read from
/proc for the server processes, the load process and all postgres processes, to see where the time goes.

Part 2 — the read path against a streaming replica: the script makes its own primary (initdb, port 5443)
and a replica of it with ``pg_basebackup -R`` (port 5444), seeds clues through the real intake pipeline,
then runs a ledger-style listing query against the primary, the replica, and both; it reports replication
lag after a burst of writes. Both clusters are stopped and deleted at the end.

Bounded: only 127.0.0.1, a few seconds per step, everything started here is stopped here.

    /work/venv/bin/python bench/bench_scaling.py [--seconds 8] [--concurrency 32] [--skip-replica]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("TIPLINE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TIP = {
    "text": "派出所民警在办案时收了当事人的红包，还打招呼让案子不立案，压着不办已经半年。",
    "accused": {"name": "测试对象", "unit": "某派出所", "position": "民警"},
}
CLK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------ load driver


async def drive(url: str, seconds: float, concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def loop() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post("/api/v1/tips", json=TIP)
                    key = str(response.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                if key == "201":  # latency of acknowledged tips only; a fast 503 is no throughput
                    latencies.append(time.perf_counter() - started)
                statuses[key] = statuses.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ok = statuses.get("201", 0)
    latencies.sort()
    return {
        "ok": ok,
        "failed": sum(statuses.values()) - ok,  # other answers and connection errors, beside the rate
        "rps": ok / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else None,
        "statuses": statuses,
    }


# ------------------------------------------------------------------------------------------ /proc helpers


def _proc_stat(pid: int) -> tuple[int, str, float] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / CLK  # ppid, comm, utime+stime


def cpu_by_group(server_pid: int, driver_pid: int) -> dict[str, float]:
    """CPU seconds so far: the server's process tree, the driver, every postgres process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _proc_stat(int(entry))):
            table[int(entry)] = info

    def tree(root: int) -> set[int]:
        members, grew = {root}, True
        while grew:
            grew = False
            for pid, (ppid, _, _) in table.items():
                if ppid in members and pid not in members:
                    members.add(pid)
                    grew = True
        return members

    server = tree(server_pid)
    return {
        "server": sum(table[p][2] for p in server if p in table),
        "driver": table.get(driver_pid, (0, "", 0.0))[2],
        "postgres": sum(cpu for pid, (_, comm, cpu) in table.items() if comm.startswith("postgres")),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"server at {url} not ready")


# ------------------------------------------------------------------------------------------ part 1


async def intake_curve(seconds: float, concurrency: int, max_workers: int) -> list[dict]:
    import asyncpg

    name = f"tipline_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    db_url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    data_dir = Path(tempfile.mkdtemp(prefix="tipline-bench-"))
    env = {**os.environ, "TIPLINE_DATABASE_URL": db_url, "TIPLINE_DATA_DIR": str(data_dir)}
    rows = []
    try:
        subprocess.run(
            [sys.executable, "-m", "service", "db", "upgrade"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        from service.app.runtime import ensure_development_material
        from service.platform.settings import Settings

        ensure_development_material(Settings(data_dir=data_dir, database_url=db_url))
        for workers in range(1, max_workers + 1):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "service",
                    "serve",
                    "--role",
                    "intake",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_ready(url)
                driver = subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--drive",
                        url,
                        "--seconds",
                        str(seconds),
                        "--concurrency",
                        str(concurrency),
                    ],
                    stdout=subprocess.PIPE,
                    cwd=ROOT,
                )
                before = cpu_by_group(server.pid, driver.pid)
                wall = time.monotonic()
                await asyncio.sleep(seconds - 0.5)
                after = cpu_by_group(server.pid, driver.pid)  # sampled just before the driver exits
                wall = time.monotonic() - wall
                out, _ = driver.communicate(timeout=seconds + 60)
                result = json.loads(out)
                cpu = {k: round((after[k] - before[k]) / wall, 2) for k in after}
                cpu_ms = {k: round(1000 * (after[k] - before[k]) / max(1, result["ok"]), 2) for k in after}
                row = {"workers": workers, **result, "cpu_cores": cpu, "cpu_ms_per_tip": cpu_ms}
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    return rows


# ------------------------------------------------------------------------------------------ part 2


def _pg_bin(tool: str) -> str:
    for folder in ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"):
        if Path(folder, tool).exists():
            return str(Path(folder, tool))
    raise RuntimeError(f"{tool} not found")


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


def _start_cluster(datadir: Path, port: int, log: Path) -> None:
    subprocess.run(
        _as_postgres(
            _pg_bin("pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1",
            "start",
        ),
        check=True,
        capture_output=True,
    )


def _stop_cluster(datadir: Path) -> None:
    subprocess.run(
        _as_postgres(_pg_bin("pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"), capture_output=True
    )


LEDGER_QUERY = (
    "SELECT id, registry_number, source, channel, status, received_at, due_at FROM clues "
    "ORDER BY received_at DESC, id LIMIT 50 OFFSET $1"
)


async def read_load(dsns: list[str], seconds: float, concurrency: int, rows: int) -> float:
    import asyncpg

    pools = [await asyncpg.create_pool(d, min_size=1, max_size=concurrency) for d in dsns]
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal done
        pool = pools[i % len(pools)]
        while time.perf_counter() < deadline:
            await pool.fetch(LEDGER_QUERY, random.randrange(max(1, rows - 50)))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    for pool in pools:
        await pool.close()
    return done / elapsed


async def replica_read_path(seconds: float, seed: int) -> dict:
    import asyncpg
    import httpx

    base = Path(tempfile.mkdtemp(prefix="tipline-replica-"))
    base.chmod(0o755)
    primary, replica = base / "primary", base / "replica"
    p_port, r_port = free_port(), free_port()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    result: dict = {}
    started = []
    try:
        subprocess.run(
            _as_postgres(
                _pg_bin("initdb"),
                "-D",
                str(primary),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ),
            check=True,
            capture_output=True,
        )
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        _start_cluster(primary, p_port, base / "primary.log")
        started.append(primary)
        subprocess.run(
            _as_postgres(
                _pg_bin("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(p_port),
                "-U",
                "postgres",
                "-D",
                str(replica),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ),
            check=True,
            capture_output=True,
        )
        _start_cluster(replica, r_port, base / "replica.log")
        started.append(replica)

        admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{p_port}/postgres")
        await admin.execute("CREATE DATABASE tipline")
        await admin.close()
        db_url = f"postgresql+asyncpg://postgres@127.0.0.1:{p_port}/tipline"
        data_dir = base / "data"

        from service.app.main import create_app
        from service.platform.settings import Settings

        app = create_app(Settings(data_dir=data_dir, database_url=db_url), frozenset({"intake"}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                t0 = time.perf_counter()
                for _ in range(seed):
                    assert (await client.post("/api/v1/tips", json=TIP)).status_code == 201
                result["seed_rps_in_process"] = round(seed / (time.perf_counter() - t0), 1)

        p_dsn = f"postgresql://postgres@127.0.0.1:{p_port}/tipline"
        r_dsn = f"postgresql://postgres@127.0.0.1:{r_port}/tipline"
        # Replication lag after the burst: wait until the replica has replayed the primary's WAL position.
        p, r = await asyncpg.connect(p_dsn), await asyncpg.connect(r_dsn)
        target = await p.fetchval("SELECT pg_current_wal_lsn()")
        t0 = time.perf_counter()
        while not await r.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
            await asyncio.sleep(0.005)
        result["replica_catch_up_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        result["replica_rows"] = await r.fetchval("SELECT count(*) FROM clues")
        result["replica_in_recovery"] = await r.fetchval("SELECT pg_is_in_recovery()")
        await p.close()
        await r.close()
        for label, dsns in (("primary", [p_dsn]), ("replica", [r_dsn]), ("both", [p_dsn, r_dsn])):
            result[f"ledger_qps_{label}"] = round(await read_load(dsns, seconds, 8, seed), 1)
    finally:
        for cluster in reversed(started):
            _stop_cluster(cluster)
        shutil.rmtree(base, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=400)
    parser.add_argument("--skip-replica", action="store_true")
    parser.add_argument("--skip-intake", action="store_true")
    args = parser.parse_args()
    if args.drive:
        assert args.drive.startswith("http://127.0.0.1:"), "load goes to this machine only"
        print(json.dumps(asyncio.run(drive(args.drive, args.seconds, args.concurrency))))
        return 0
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()}", flush=True)
    if not args.skip_intake:
        asyncio.run(intake_curve(args.seconds, args.concurrency, args.max_workers))
    if not args.skip_replica:
        print(
            json.dumps({"replica": asyncio.run(replica_read_path(args.seconds / 2, args.seed))}), flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
