import os

import pytest

from service.platform.blobs import (
    BlobExists,
    BlobNotFound,
    BlobStore,
    InvalidBlobId,
    LocalBlobStore,
    MemoryBlobStore,
    new_blob_id,
)


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path) -> BlobStore:
    return LocalBlobStore(tmp_path / "blobs") if request.param == "local" else MemoryBlobStore()


async def read_all(store: BlobStore, blob_id: str) -> bytes:
    return b"".join([c async for c in store.open_reader(blob_id)])


async def test_write_commit_read_delete(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)
    blob_id = new_blob_id()
    data = os.urandom(700_000)
    async with await store.open_writer(blob_id) as writer:
        await writer.write(data[:1000])
        assert not await store.exists(blob_id)
        await writer.write(data[1000:])
        await writer.commit()
    assert await store.exists(blob_id)
    assert await read_all(store, blob_id) == data
    await store.delete(blob_id)
    assert not await store.exists(blob_id)
    with pytest.raises(BlobNotFound):
        await read_all(store, blob_id)


async def test_abort_and_exception_leave_nothing(store: BlobStore, tmp_path) -> None:
    blob_id = new_blob_id()
    writer = await store.open_writer(blob_id)
    await writer.write(b"ciphertext")
    await writer.abort()
    assert not await store.exists(blob_id)
    with pytest.raises(RuntimeError):
        async with await store.open_writer(blob_id) as writer:
            await writer.write(b"ciphertext")
            raise RuntimeError("boom")
    assert not await store.exists(blob_id)
    if isinstance(store, LocalBlobStore):
        assert [p for p in store.root.rglob("*") if p.is_file()] == []


async def test_commit_never_overwrites(store: BlobStore) -> None:
    blob_id = new_blob_id()
    for expected_error in (None, BlobExists):
        writer = await store.open_writer(blob_id)
        await writer.write(b"x")
        if expected_error:
            with pytest.raises(expected_error):
                await writer.commit()
        else:
            await writer.commit()
    assert await read_all(store, blob_id) == b"x"


@pytest.mark.parametrize(
    "bad", ["../etc/passwd", "ABCDEF" * 6, "0" * 31, "0" * 33, "", "0" * 31 + "/", "0" * 32 + "\n"]
)
async def test_invalid_ids_rejected(store: BlobStore, bad: str) -> None:
    with pytest.raises(InvalidBlobId):
        await store.open_writer(bad)
    with pytest.raises(InvalidBlobId):
        await store.exists(bad)
    with pytest.raises(InvalidBlobId):
        await store.delete(bad)


async def test_local_temp_files_inside_root_and_private(tmp_path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    blob_id = new_blob_id()
    writer = await store.open_writer(blob_id)
    await writer.write(b"x")
    parts = list((tmp_path / "blobs" / ".tmp").iterdir())
    assert len(parts) == 1 and (parts[0].stat().st_mode & 0o777) == 0o600
    await writer.commit()
    assert list((tmp_path / "blobs" / ".tmp").iterdir()) == []
    assert await store.sweep_temporary() == 0
