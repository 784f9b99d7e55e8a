"""Intake throughput and latency: the real server on the embedded default (SQLite, one uvicorn worker)
beside a bare FastAPI endpoint that only parses the same JSON, driven by the same load from a separate
process. Layouts of the same code:

- ``all-in-one``: ``tipline serve`` as README starts it — intake, staff, mail and the job worker in one
  server process, with its intake worker process (``service/intake/pipeline.py``) classifying, sealing and
  registering beside the event loop;
- ``all-in-one, national suite``: the same sealing with SM2/SM4-GCM/SM3 (``TIPLINE_CRYPTO_SUITE``);
- ``all-in-one, no intake worker``: the same with ``TIPLINE_INTAKE_WORKERS=0`` (everything on the event
  loop): the baseline for the pipeline;
- ``split``: ``tipline serve --role intake`` plus ``tipline serve --role worker`` as a second process on
  the same SQLite file.

Besides requests/s and latency it prints the CPU the server's processes used (server and intake worker
together, in cores), so that a gain bought with a second core shows as one.

The bare endpoint stays up for the whole run, and each layout is measured in ``--rounds`` rounds, each round
the bare endpoint then the layout, back to back: this machine's speed drifts by a third over minutes, so each
layout is compared with the baseline measured beside it (medians over the rounds), never with one measured
minutes earlier. While the bare endpoint is measured the layout's processes are stopped (SIGSTOP), so that
their background work (near-duplicate linking of what was just submitted) is not charged to the baseline.

    python bench/bench_intake.py [--seconds 15] [--rounds 3] [--connections 16] [--rate 200]

Targets (Foundation I): intake throughput >= 20% of the bare endpoint; p99 < 50 ms at 200 requests/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import run_in_process  # noqa: E402

from tests.helpers import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

REPORTS = [
    "派出所民警王某在办理我的案件时收了对方的红包，还打招呼让案子不立案，已经三个月了石沉大海。",
    "法院执行局的法官跟被执行人私下吃饭，判决生效一年了一直说执行难，钱一分没拿到。",
    "看守所有人收钱帮在押人员办保外就医，交二十万就能办病出来，其实人根本没病。",
    "我邻居家的狗天天叫，物业也不管，希望有关部门处理一下。",
    "交警大队某中队长的老婆开了一家拖车场，事故车辆都被指定拖到她那里，收费很高。",
]


def bodies() -> list[bytes]:
    out = []
    for i, text in enumerate(REPORTS * 20):
        body = {
            "text": f"{text}（第{i}份）",
            "accused": {"name": "某某", "unit": "某单位"},
            "incident": {"time": "去年"},
        }
        if i % 3 == 0:
            body |= {"anonymous": False, "submitter": {"name": "举报人", "phone": "13800138000"}}
        out.append(json.dumps(body, ensure_ascii=False).encode())
    return out


def wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("server exited early")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def start_tipline(data_dir: str, *roles: str, **settings: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")} | {
        "TIPLINE_DATA_DIR": data_dir,
        "PYTHONPATH": str(REPO),
        **settings,
    }
    role_args = [arg for role in roles for arg in ("--role", role)]
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--smtp-port", "0", *role_args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/healthz", process)
    return process, f"http://127.0.0.1:{port}/api/v1/tips"


def start_bare() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_intake_app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).parent,
        env=os.environ | {"PYTHONPATH": f"{REPO}:{Path(__file__).parent}"},
    )
    wait_ready(f"http://127.0.0.1:{port}/docs", process)
    return process, f"http://127.0.0.1:{port}/api/v1/tips"


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes and their children (the intake worker)."""
    total, seen = 0.0, set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return total


def process_tree(pids: list[int]) -> list[int]:
    """These processes and their children (intake worker, job process), recursively."""
    tree, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        if pid in tree:
            continue
        tree.append(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
    return tree


@contextlib.contextmanager
def frozen(pids: list[int]) -> Iterator[None]:
    """The layout's processes stopped (SIGSTOP) while the baseline is measured: their background work (linking
    what was just submitted) is not charged to the bare endpoint, and is not skipped either."""
    tree = process_tree(pids)
    for pid in tree:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in tree:
            os.kill(pid, signal.SIGCONT)


def closed(pool, label: str, url: str, args, pids: list[int]) -> dict:  # type: ignore[no-untyped-def]
    before = cpu_seconds(pids)
    result = pool.apply(run_in_process, ("closed", label, url, bodies(), args.connections, args.seconds))
    result["cores"] = (cpu_seconds(pids) - before) / result["seconds"]
    return result


def measure(pool, label: str, url: str, args, pids: list[int], bare: tuple[str, int]) -> dict:  # type: ignore[no-untyped-def]
    """Open loop once, then rounds of (bare, this layout) closed loops; medians and the ratio."""
    payload = bodies()
    pool.apply(run_in_process, ("closed", label, url, payload, 4, 2.0))  # warm-up
    opened = pool.apply(run_in_process, ("open", label, url, payload, args.rate, args.seconds))
    bare_runs, runs = [], []
    for _ in range(args.rounds):
        with frozen(pids):
            bare_runs.append(closed(pool, "bare", bare[0], args, [bare[1]]))
        runs.append(closed(pool, label, url, args, pids))
    median = statistics.median
    return {
        "label": label,
        "rps": median(r["rps"] for r in runs),
        "p50_ms": median(r["p50_ms"] for r in runs),
        "p99_ms": median(r["p99_ms"] for r in runs),
        "failures": sum(r["failures"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "cores": median(r["cores"] for r in runs),
        "bare_rps": median(r["rps"] for r in bare_runs),
        "ratios": [r["rps"] / b["rps"] for r, b in zip(runs, bare_runs, strict=True)],
        "statuses": {
            k: sum(r["statuses"].get(k, 0) for r in runs) for k in {k for r in runs for k in r["statuses"]}
        },
        "open": opened,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()

    results = []
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        bare, bare_url = start_bare()
        try:
            pool.apply(run_in_process, ("closed", "warm-up", bare_url, bodies(), 4, 2.0))
            bare_open = pool.apply(
                run_in_process, ("open", "bare", bare_url, bodies(), args.rate, args.seconds)
            )
            for label, roles, settings in (
                ("tipline all-in-one", (), {}),
                ("all-in-one, national suite", (), {"TIPLINE_CRYPTO_SUITE": "national"}),
                ("all-in-one, no intake worker", (), {"TIPLINE_INTAKE_WORKERS": "0"}),
                ("tipline split (intake+worker)", ("intake", "worker"), {}),
            ):
                with tempfile.TemporaryDirectory() as data_dir:
                    servers = []
                    try:
                        for role in roles or (None,):
                            servers.append(start_tipline(data_dir, *([role] if role else []), **settings))
                        url = servers[0][1]
                        pids = [process.pid for process, _ in servers]
                        results.append(measure(pool, label, url, args, pids, (bare_url, bare.pid)))
                    finally:
                        for process, _ in servers:
                            process.terminate()
                            process.wait()
        finally:
            bare.terminate()
            bare.wait()

    print(
        f"closed loop, {args.connections} connections, {args.seconds:.0f} s, median of {args.rounds} rounds"
    )
    print("(each round: the bare endpoint, then the layout; vs bare = median of the rounds' ratios)")
    print("(req/s and latencies: 2xx answers only; failed: other answers; errors: no answer)")
    columns = ("req/s", "p50 ms", "p99 ms", "failed", "errors", "bare", "vs bare")
    print(f"  {'':32} " + " ".join(f"{column:>8}" for column in columns) + f" {'cores':>6}")
    for r in results:
        ratios = " ".join(f"{ratio:.1%}" for ratio in r["ratios"])
        print(
            f"  {r['label']:32} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['failures']:8d}"
            f" {r['errors']:8d}"
            f" {r['bare_rps']:8.1f} {statistics.median(r['ratios']):8.1%} {r['cores']:6.2f}  rounds: {ratios}"
            f"  {r['statuses']}"
        )
    print(f"open loop at {args.rate:.0f} req/s, {args.seconds:.0f} s:")
    for label, opened in [("bare FastAPI (parse only)", bare_open)] + [
        (r["label"], r["open"]) for r in results
    ]:
        print(
            f"  {label:32} achieved {opened['rps']:7.1f} req/s  p50 {opened['p50_ms']:.2f} ms"
            f"  p99 {opened['p99_ms']:.2f} ms  failed {opened['failures']}, errors {opened['errors']}"
            f"  {opened['statuses']}"
        )
    print("targets: intake >= 20% of bare; p99 < 50 ms at 200 req/s")


if __name__ == "__main__":
    main()
