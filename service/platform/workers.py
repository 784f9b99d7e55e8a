"""Worker processes for CPU-heavy steps (mail parsing, intake classification and sealing), so that they run
on another core beside the event loop instead of on it.

Workers are spawned (they share no locks or threads with the server), die with the server's process
(``spawn_helper``), and are recreated after a fork and after a worker died. A caller that gets
``WorkerUnavailable`` does the work in its own process instead, so nothing ever depends on a pool being there.

Each worker talks to the server over a socket pair that the event loop itself reads and writes: no helper
threads in the server (a thread handing a result to the event loop waits for the GIL, up to the switch
interval, while the loop is busy; under load that wait was most of a call's round trip). A worker runs its
calls in the order sent and answers each with its call's id. Calls of a ``mergeable`` function that are
waiting together when the worker gets to them run as one (intake: one transaction for several batches).
Before it runs anything the worker says which calls it begins, so that if it dies the server knows exactly
which calls may have had effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

# A frame: its length, the call's id, whether it succeeded (answers only), then the pickled call or value.
_HEAD = struct.Struct("!IQ?")
_BEGAN = 0  # the "call id" of the worker's notice listing the calls it begins
_MERGERS: dict[Callable[..., Any], Callable[[list[tuple[Any, ...]]], list[Any]]] = {}
_MOST_MERGED = 4

F = TypeVar("F", bound=Callable[..., Any])


def mergeable(merge: Callable[[list[tuple[Any, ...]]], list[Any]]) -> Callable[[F], F]:
    """Calls of the decorated function that wait together in a worker run as ``merge([args, ...])``, which
    returns one result per call, in order (and raises for all of them)."""

    def register(fn: F) -> F:
        _MERGERS[fn] = merge
        return fn

    return register


class WorkerUnavailable(Exception):
    """No worker ran the call to its end. ``started`` says whether one may have begun it: a call that never
    reached a worker can safely be done elsewhere; one that did may have had effects (a commit)."""

    def __init__(self, *, started: bool) -> None:
        super().__init__("worker process unavailable")
        self.started = started


def default_worker_count() -> int:
    """One core stays with the event loop; at most four workers."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class WorkerPool:
    def __init__(
        self, workers: int, *, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self.workers = workers
        self._initializer = initializer
        self._initargs = initargs
        self._live: list[_Worker] = []
        self._pid = os.getpid()
        self._next_id = _BEGAN

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker; raises ``WorkerUnavailable`` if no worker finished it."""
        loop = asyncio.get_running_loop()
        self._next_id += 1
        call_id = self._next_id
        try:
            frame = _frame(call_id, True, (fn, args))
            worker = self._least_busy()
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:  # no process, or no pickle
            raise WorkerUnavailable(started=False) from exc
        return await worker.call(loop, call_id, frame)

    def pids(self) -> list[int]:
        """The live workers' process ids (operations and tests: which processes hold what)."""
        if self._pid != os.getpid():
            return []
        return [worker.process.pid for worker in self._live if worker.alive and worker.process.pid]

    def shutdown(self) -> None:
        if self._pid == os.getpid():
            for worker in self._live:
                worker.stop()
        self._live = []

    def _least_busy(self) -> _Worker:
        if self._pid != os.getpid():  # forked: the parent's workers belong to the parent
            self._live, self._pid = [], os.getpid()
        self._live = [worker for worker in self._live if worker.alive]
        if len(self._live) < self.workers:
            self._live.append(_Worker.start(self._initializer, self._initargs))
        return min(self._live, key=lambda worker: len(worker.pending))


class _Worker:
    """The server's side of one worker process: its socket, and the calls it has not answered yet."""

    def __init__(self, process: multiprocessing.process.BaseProcess, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.alive = True
        self._began: set[int] = set()
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def start(cls, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> _Worker:
        ours, theirs = socket.socketpair()
        init = _name_of(initializer) if initializer is not None else None
        process = spawn_helper(_serve, theirs, os.getpid(), init, initargs)
        try:
            process.start()
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(process, ours)

    async def call(self, loop: asyncio.AbstractEventLoop, call_id: int, frame: bytes) -> Any:
        self._attach(loop)
        future = loop.create_future()
        self.pending[call_id] = future
        self._send(frame)
        try:
            return await future
        finally:
            self.pending.pop(call_id, None)

    def stop(self) -> None:
        """Close the socket: the worker finishes its call, finds the end of its input and leaves."""
        self._gone()
        with contextlib.suppress(Exception):
            self.process.join(timeout=0)

    # --- on the event loop --------------------------------------------------------------------------

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read on the loop that waits for the answers (tests run more than one loop in a process)."""
        if self._loop is loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
            self._loop.remove_writer(self.sock.fileno())
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)
        if self._outbox:
            loop.add_writer(self.sock.fileno(), self._writable)

    def _send(self, frame: bytes) -> None:
        if not self._outbox:
            try:
                sent = self.sock.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._gone()
                return
            if sent == len(frame):
                return
            frame = frame[sent:]
            assert self._loop is not None
            self._loop.add_writer(self.sock.fileno(), self._writable)
        self._outbox += frame

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self._outbox)
        except BlockingIOError:
            return
        except OSError:
            self._gone()
            return
        del self._outbox[:sent]
        if not self._outbox and self._loop is not None:
            self._loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker is gone (killed, out of memory, or its initializer failed)
            self._gone()
            return
        self._inbox += data
        for call_id, ok, payload in _take_frames(self._inbox):
            self._deliver(call_id, ok, payload)

    def _deliver(self, call_id: int, ok: bool, payload: bytes) -> None:
        if call_id == _BEGAN:
            self._began.update(pickle.loads(payload))  # noqa: S301 - from our own child, as below
            return
        self._began.discard(call_id)
        future = self.pending.pop(call_id, None)
        if future is None or future.done():
            return  # its caller gave up (cancelled)
        try:
            value = pickle.loads(payload)  # noqa: S301 - from our own child, over a private socket pair
        except Exception as exc:  # noqa: BLE001 - e.g. an exception class that takes other arguments
            future.set_exception(RuntimeError(f"worker answer unreadable: {type(exc).__name__}"))
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def _gone(self) -> None:
        """Fail what is outstanding, saying which calls the worker had begun."""
        if not self.alive:
            return
        self.alive = False
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
            self._loop.remove_writer(self.sock.fileno())
        self.sock.close()
        for call_id, future in self.pending.items():
            if not future.done():
                future.set_exception(WorkerUnavailable(started=call_id in self._began))
        self.pending.clear()


def _take_frames(buffer: bytearray) -> Iterator[tuple[int, bool, bytes]]:
    """The complete frames at the start of ``buffer``, taken off it; a partial one stays for later."""
    while len(buffer) >= _HEAD.size:
        length, call_id, ok = _HEAD.unpack_from(buffer)
        if len(buffer) < _HEAD.size + length:
            return
        payload = bytes(buffer[_HEAD.size : _HEAD.size + length])
        del buffer[: _HEAD.size + length]
        yield call_id, ok, payload


def _frame(call_id: int, ok: bool, value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEAD.pack(len(payload), call_id, ok) + payload


# --- Helper processes that die with the server ---------------------------------------------------------

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def spawn_helper(
    target: Callable[..., Any], *args: Any, name: str | None = None, daemon: bool = True
) -> multiprocessing.process.BaseProcess:
    """A spawned (not yet started) process running ``target(*args)`` that dies with this one.

    A SIGKILLed server cannot stop its helpers; left running they kept its database connections, locks
    and job leases and took the CPU from the server that replaced it (seconds each, on every restart).
    So the child asks the kernel to SIGKILL it when its parent dies, before it imports ``target``'s
    module (that import can take seconds). The signal follows the *thread* that spawned the child: spawn
    helpers from the event loop's thread, which lives as long as the server."""
    return multiprocessing.get_context("spawn").Process(
        target=_helper_main, args=(os.getpid(), _name_of(target), args), name=name, daemon=daemon
    )


def die_with_parent(parent_pid: int) -> None:
    """In a helper, first thing: be SIGKILLed when the parent dies (Linux), and leave now if it already
    has (it may have died before the request took effect: then nobody would send the signal)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def _name_of(fn: Callable[..., Any]) -> tuple[str, str]:
    """A module-level function by name, imported in the child only when asked for."""
    return fn.__module__, fn.__qualname__


def _imported(name: tuple[str, str]) -> Callable[..., Any]:
    module, qualname = name
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found  # type: ignore[no-any-return]


def _helper_main(parent_pid: int, target: tuple[str, str], args: tuple[Any, ...]) -> None:
    die_with_parent(parent_pid)
    _imported(target)(*args)


# --- In a worker process --------------------------------------------------------------------------------


def _serve(
    sock: socket.socket,
    parent_pid: int,
    initializer: tuple[str, str] | None,
    initargs: tuple[Any, ...],
) -> None:
    """Run calls until the server closes the socket or its process is gone."""
    _watch_parent(parent_pid)
    if initializer is not None:
        _imported(initializer)(*initargs)  # if this fails the worker exits: the server sees the socket close
    inbox = _Inbox(sock)
    while True:
        calls = inbox.calls()
        if calls is None:
            return  # the server closed the socket
        while calls:
            group = [calls.pop(0)]
            merge = _MERGERS.get(group[0][1])
            while merge and calls and calls[0][1] is group[0][1] and len(group) < _MOST_MERGED:
                group.append(calls.pop(0))
            try:
                sock.sendall(_frame(_BEGAN, True, [call_id for call_id, _, _ in group]))
                for answer in _run(group, merge):
                    sock.sendall(answer)
            except OSError:
                return


def _run(group: list[tuple[int, Any, tuple[Any, ...]]], merge: Any) -> list[bytes]:
    """One call, or several merged: an answer frame for each."""
    try:
        if len(group) == 1:
            call_id, fn, args = group[0]
            return [_frame(call_id, True, fn(*args))]
        results = merge([args for _, _, args in group])
        return [_frame(call_id, True, result) for (call_id, _, _), result in zip(group, results, strict=True)]
    except Exception as exc:  # noqa: BLE001 - the callers get it
        return [_error_frame(call_id, exc) for call_id, _, _ in group]


class _Inbox:
    """The worker's side of the socket: calls as they arrive, and everything that has arrived meanwhile."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def calls(self) -> list[tuple[int, Any, tuple[Any, ...]]] | None:
        """At least one call (waiting for it), plus all others already here; None once the server is gone."""
        calls = self._parse()
        while not calls:
            if not self._receive(wait=True):
                return None
            calls = self._parse()
        while self._receive(wait=False):
            calls += self._parse()
        return calls

    def _receive(self, *, wait: bool) -> bool:
        self._sock.setblocking(wait)
        try:
            data = self._sock.recv(1 << 20)
        except BlockingIOError:
            return False
        finally:
            self._sock.setblocking(True)
        if not data:
            return False
        self._buffer += data
        return True

    def _parse(self) -> list[tuple[int, Any, tuple[Any, ...]]]:
        calls = []
        for call_id, _, payload in _take_frames(self._buffer):
            try:
                fn, args = pickle.loads(payload)  # noqa: S301 - from our own parent, ditto
            except Exception:  # noqa: BLE001 - e.g. a function this worker cannot import: answered as an error
                fn, args = _unreadable_call, ()
            calls.append((call_id, fn, args))
        return calls


def _unreadable_call() -> None:
    raise RuntimeError("worker could not read the call")


def _error_frame(call_id: int, exc: Exception) -> bytes:
    try:
        return _frame(call_id, False, exc)
    except Exception:  # noqa: BLE001 - an exception that does not pickle: its type is all that travels
        return _frame(call_id, False, RuntimeError(f"worker call failed: {type(exc).__name__}"))


def _watch_parent(parent_pid: int) -> None:
    """Leave when the server's process is gone, where there is no parent-death signal (not Linux) and the
    socket's end of file does not tell (the worker is busy, or another process holds the socket open)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
