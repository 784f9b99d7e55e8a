"""Intake throughput and latency: the real server (embedded default, one worker) beside a bare FastAPI
endpoint that only parses the same JSON, driven by the same load from a separate process.

    python bench/bench_intake.py [--seconds 15] [--connections 16] [--rate 200]

Targets (Foundation I): intake throughput >= 20% of the bare endpoint; p99 < 50 ms at 200 requests/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
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


def start_tipline(data_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")} | {
        "TIPLINE_DATA_DIR": data_dir,
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
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


def measure(pool, label: str, url: str, args) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    payload = bodies()
    pool.apply(run_in_process, ("closed", label, url, payload, 4, 2.0))  # warm-up
    closed = pool.apply(run_in_process, ("closed", label, url, payload, args.connections, args.seconds))
    opened = pool.apply(run_in_process, ("open", label, url, payload, args.rate, args.seconds))
    return closed, opened


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir, multiprocessing.get_context("spawn").Pool(1) as pool:
        bare, bare_url = start_bare()
        try:
            bare_closed, bare_open = measure(pool, "bare FastAPI (parse only)", bare_url, args)
        finally:
            bare.terminate()
            bare.wait()
        server, url = start_tipline(data_dir)
        try:
            tip_closed, tip_open = measure(pool, "tipline intake (SQLite)", url, args)
        finally:
            server.terminate()
            server.wait()

    print(f"{'':28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  statuses")
    for row in (bare_closed, tip_closed):
        print(
            f"{row['label']:28} {row['rps']:8.1f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['errors']:7d}  {row['statuses']}"
        )
    print(f"throughput ratio (intake / bare): {tip_closed['rps'] / bare_closed['rps']:.1%}  (target >= 20%)")
    print(f"at {args.rate:.0f} req/s open-loop:")
    for row in (bare_open, tip_open):
        print(
            f"  {row['label']:28} achieved {row['rps']:7.1f} req/s  p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  {row['statuses']}"
        )
    print(f"intake p99 at {args.rate:.0f} req/s: {tip_open['p99_ms']:.2f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
