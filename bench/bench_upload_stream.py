"""Throughput and memory of the attachment pipeline on a 200 MB stream, beside a discard-only baseline.

Usage: python bench/bench_upload_stream.py [--mb 200] [--kind text|audio|both] [--store local|discard]

The baseline consumes the same generated chunks and throws them away (what an endpoint that only discards
the body does). Memory: peak traced Python allocations (tracemalloc) per run, and the process's resident
high-water mark growth over the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.attachments.pipeline import store_attachment  # noqa: E402
from service.platform.blobs import LocalBlobStore, MemoryBlobStore  # noqa: E402

CHUNK = 64 * 1024


def make_block(kind: str) -> bytes:
    if kind == "text":
        line = "某区法院执行局法官收受当事人红包，并打招呼过问案件。\n".encode()
        block = line * (CHUNK // len(line))
    else:
        frame = b"\xff\xfb\x90\x00" + bytes(413)  # MPEG-1 layer III frame, 417 bytes
        block = frame * (CHUNK // len(frame))
    return block


async def source(kind: str, total: int) -> AsyncIterator[bytes]:
    block = make_block(kind)
    sent = 0
    while sent < total:
        yield block
        sent += len(block)


class DiscardStore(MemoryBlobStore):
    async def open_writer(self, blob_id: str):
        writer = await super().open_writer(blob_id)

        async def write(data: bytes) -> None:
            return None

        writer.write = write  # type: ignore[method-assign]
        return writer


async def baseline(kind: str, total: int) -> int:
    n = 0
    async for chunk in source(kind, total):
        n += len(chunk)
    return n


def wrap(file_key: bytes, binding: str) -> bytes:
    return b"\x00" * 32  # the real HPKE wrap is a constant cost per file; irrelevant to throughput


async def run_pipeline(kind: str, total: int, store_kind: str, root: Path) -> int:
    store = LocalBlobStore(root) if store_kind == "local" else DiscardStore()
    record = await store_attachment(source(kind, total), store=store, wrap_key=wrap, max_size=total + CHUNK)
    if store_kind == "local":
        await store.delete(record.blob_id)
    return record.received_size


def measure(label: str, coro_factory) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    size = asyncio.run(coro_factory())
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{label:<28} {size / 2**20:8.1f} MiB  {elapsed:6.2f} s  {size / 2**20 / elapsed:8.1f} MiB/s  "
        f"peak traced {peak / 2**20:6.2f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--kind", choices=["text", "audio", "both"], default="both")
    parser.add_argument("--store", choices=["local", "discard"], default="local")
    args = parser.parse_args()
    total = args.mb * 1024 * 1024
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kinds = ["text", "audio"] if args.kind == "both" else [args.kind]
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        for kind in kinds:
            measure(f"baseline discard ({kind})", lambda kind=kind: baseline(kind, total))
            measure(
                f"pipeline {args.store} ({kind})",
                lambda kind=kind: run_pipeline(kind, total, args.store, Path(tmp) / "store"),
            )
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_start) / 1024
    print(f"resident high-water growth over the run: {rss_growth:.1f} MiB")


if __name__ == "__main__":
    main()
