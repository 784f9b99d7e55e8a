"""Helper processes die with the server (``service.platform.workers.spawn_helper``): real processes, no mocks.

A SIGKILLed server cannot stop its helpers itself. Its intake worker (busy in a call, so not reading the
socket whose end of file would tell it) and a helper like the job process must be killed by the kernel at
once, not linger holding database connections and the CPU while a new server starts.

Each scenario runs in a harness process that makes itself the "child subreaper": the helpers, orphaned
when their server dies, become its children, so it can wait for them and see how they ended — by SIGKILL
(the parent-death signal), not by exiting on their own a while later (the portable fallbacks).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def _server(mode: str, marker: str) -> None:
    """The 'server': starts helpers, says their pids, then waits to be killed."""
    import asyncio

    from service.platform.workers import WorkerPool, spawn_helper

    if mode == "early":  # killed before the helper could even ask for the signal
        helper = spawn_helper(Path.touch, Path(marker))
        helper.start()
        print(json.dumps([helper.pid]), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    async def main() -> None:
        pool = WorkerPool(1)
        await pool.run(time.sleep, 0)  # the worker is up
        busy = asyncio.ensure_future(pool.run(time.sleep, 600))  # and now busy: not reading its socket
        job = spawn_helper(time.sleep, 600, daemon=False)  # as the job process is started
        job.start()
        await asyncio.sleep(0.5)
        print(json.dumps([*pool.pids(), job.pid]), flush=True)
        await busy

    asyncio.run(main())


def _harness(mode: str, marker: str) -> None:
    """Start the server, SIGKILL it once it has its helpers, and report how each helper ended."""
    import ctypes

    pr_set_child_subreaper = 36
    assert ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    code = f"from tests.unit.test_helper_processes import _server; _server({mode!r}, {marker!r})"
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO_ROOT)
    assert server.stdout is not None
    helpers = json.loads(server.stdout.readline())
    if server.poll() is None:
        server.kill()
    server.wait()  # once it is reaped, its children are ours
    ended: dict[int, str] = {}
    deadline = time.monotonic() + 60
    while len(ended) < len(helpers) and time.monotonic() < deadline:
        for pid in helpers:
            if pid in ended:
                continue
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                ended[pid] = (
                    f"signal {os.WTERMSIG(status)}"
                    if os.WIFSIGNALED(status)
                    else f"exit {os.WEXITSTATUS(status)}"
                )
        time.sleep(0.01)
    print(json.dumps({"helpers": len(helpers), "ended": list(ended.values())}))
    for pid in helpers:  # whatever did not end: do not leave it behind
        if pid not in ended:
            os.kill(pid, signal.SIGKILL)


def _run_harness(mode: str, marker: Path) -> dict[str, object]:
    code = f"from tests.unit.test_helper_processes import _harness; _harness({mode!r}, {str(marker)!r})"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=REPO_ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_helpers_of_a_sigkilled_server_are_killed_with_it(tmp_path: Path) -> None:
    report = _run_harness("running", tmp_path / "unused")
    # The busy intake worker and the job-style helper: both SIGKILLed by the kernel, neither left running.
    assert report["helpers"] == 2
    assert report["ended"] == [f"signal {signal.SIGKILL}"] * 2, report


def test_a_helper_whose_server_died_before_it_started_leaves_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    report = _run_harness("early", marker)
    # Nobody sends the signal to a helper orphaned before it asked for it: it sees its parent gone instead.
    assert report["helpers"] == 1 and len(report["ended"]) == 1, report  # type: ignore[arg-type]
    assert not marker.exists()
