"""The data directory is 0700; the SQLite database, its WAL and SHM, the lookup secret and every blob are
0600 — whatever the umask (022, the usual default, and 000)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from service.platform.blobs import new_blob_id
from tests.helpers.app import running_app


@contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o000])
async def test_private_files_whatever_the_umask(
    mask: int, backend: str, tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir = tmp_path / "data"
    with umask(mask):
        async with running_app(data_dir, fresh_database_url) as harness:
            response = await harness.client.post("/api/v1/tips", json={"text": "民警收红包，案子压着不立。"})
            assert response.status_code == 201
            blob_id = new_blob_id()
            async with await harness.runtime.blobs.open_writer(blob_id) as writer:
                await writer.write(b"sealed bytes")
                await writer.commit()
            blobs = harness.runtime.settings.blob_dir
            files = [p for p in data_dir.rglob("*") if p.is_file()]
            if backend == "sqlite":  # while the app runs: SQLite removes its WAL and SHM on the last close
                database = Path(fresh_database_url.split(":///", 1)[1])
                database_files = [database.with_name(database.name + s) for s in ("", "-wal", "-shm")]
                assert all(p.exists() for p in database_files)
                files += database_files
            modes = {p: mode(p) for p in files}
    assert mode(data_dir) == 0o700
    for directory in (blobs, blobs / ".tmp", blobs / blob_id[:2]):
        assert mode(directory) == 0o700, directory
    assert (blobs / blob_id[:2] / blob_id) in files
    assert data_dir / "secrets" / "lookup.key" in files
    # Public keys may be world-readable (they are public); nothing else.
    loose = {str(p): oct(m) for p, m in modes.items() if m & 0o077 and not p.name.endswith(".public.json")}
    assert not loose, f"readable by others: {loose}"
