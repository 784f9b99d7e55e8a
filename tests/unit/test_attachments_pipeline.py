import hashlib
import io
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from service.attachments.pipeline import AttachmentTooLarge, attachment_binding, store_attachment
from service.attachments.sniff import DisallowedFileType, FileKind
from service.platform.blobs import LocalBlobStore, MemoryBlobStore
from service.platform.crypto.stream import StreamAuthenticationError, decrypt_stream
from tests.helpers.blobs import chunked, fake_wrap, read_back, unwrap

CANARY = b"LISI-PLAINTEXT-CANARY-0815"


def text_upload(size: int) -> bytes:
    line = "某区法院执行局法官收受红包，".encode() + CANARY + b"\n"
    data = (line * (size // len(line) + 1))[:size]
    return data[: data.rfind(b"\n") + 1]  # whole characters only


async def test_text_round_trip_record(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    data = text_upload(300_000)
    record = await store_attachment(chunked(data), store=store, wrap_key=fake_wrap, max_size=10**6)
    assert record.kind is FileKind.TEXT_UTF8
    assert record.size == record.received_size == len(data)
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert record.segments == -(-len(data) // 65536)
    assert record.binding == attachment_binding(record.blob_id)
    assert record.wrapped_key.endswith(record.binding.encode())
    assert await read_back(store, record) == data
    with pytest.raises(StreamAuthenticationError):
        _ = [
            c
            async for c in decrypt_stream(
                unwrap(record.wrapped_key), "attachment/other", store.open_reader(record.blob_id)
            )
        ]


async def test_jpeg_through_pipeline_loses_gps() -> None:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}
    exif[0x010F] = CANARY.decode()
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "JPEG", exif=exif)
    store = MemoryBlobStore()
    record = await store_attachment(
        chunked(buf.getvalue(), 100), store=store, wrap_key=fake_wrap, max_size=10**6
    )
    plain = await read_back(store, record)
    assert CANARY not in plain and not Image.open(io.BytesIO(plain)).getexif().get_ifd(0x8825)
    assert record.kind is FileKind.JPEG and "jpeg:APP1/Exif=1" in record.removed_metadata
    assert record.received_size == len(buf.getvalue()) > record.size


def other_wrap(file_key: bytes, binding: str) -> bytes:
    """A second, distinguishable wrapping (stands in for the identity key)."""
    return b"ID" + fake_wrap(file_key, binding)


async def test_original_kept_beside_the_sanitised_copy() -> None:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}
    exif[0x010F] = CANARY.decode()
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "JPEG", exif=exif)
    data = buf.getvalue()
    store = MemoryBlobStore()
    record = await store_attachment(
        chunked(data, 100), store=store, wrap_key=fake_wrap, max_size=10**6, wrap_original_key=other_wrap
    )
    original = record.original
    assert original is not None and original.blob_id != record.blob_id
    assert original.wrapped_key.startswith(b"ID") and not record.wrapped_key.startswith(b"ID")
    assert original.binding == attachment_binding(original.blob_id)
    assert original.kind is FileKind.JPEG and original.removed_metadata == ()
    assert original.size == len(data) and original.sha256 == hashlib.sha256(data).hexdigest()
    key = unwrap(original.wrapped_key[2:])
    kept = b"".join(
        [c async for c in decrypt_stream(key, original.binding, store.open_reader(original.blob_id))]
    )
    assert kept == data and CANARY in kept
    assert CANARY not in await read_back(store, record)
    assert all(CANARY not in blob for blob in store.blobs.values())  # both stored encrypted
    assert set(store.blobs) == {record.blob_id, original.blob_id}


async def test_no_original_unless_asked() -> None:
    store = MemoryBlobStore()
    record = await store_attachment(
        chunked(text_upload(1000)), store=store, wrap_key=fake_wrap, max_size=10**6
    )
    assert record.original is None and set(store.blobs) == {record.blob_id}


@pytest.mark.parametrize("data", [text_upload(200_000), b"MZ\x90\x00" + bytes(5000)])
async def test_failure_keeps_no_original_either(tmp_path: Path, data: bytes) -> None:
    store = LocalBlobStore(tmp_path / "store")
    with pytest.raises((AttachmentTooLarge, DisallowedFileType)):
        await store_attachment(
            chunked(data), store=store, wrap_key=fake_wrap, max_size=100_000, wrap_original_key=other_wrap
        )
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("size", [70_000, 3_000_000])
async def test_too_large_leaves_no_blob(tmp_path: Path, size: int) -> None:
    store = LocalBlobStore(tmp_path / "store")
    data = text_upload(size)
    with pytest.raises(AttachmentTooLarge):
        await store_attachment(chunked(data), store=store, wrap_key=fake_wrap, max_size=len(data) - 1)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


async def test_whole_file_kind_capped_by_max_size(tmp_path: Path) -> None:
    import pikepdf

    pdf = pikepdf.new()
    for _ in range(50):
        pdf.add_blank_page()
    buf = io.BytesIO()
    pdf.save(buf)
    store = LocalBlobStore(tmp_path / "store")
    with pytest.raises(AttachmentTooLarge):
        await store_attachment(chunked(buf.getvalue(), 100), store=store, wrap_key=fake_wrap, max_size=2000)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    "data", [b"MZ\x90\x00" + bytes(5000), b"<html><body>x</body></html>", text_upload(200_000) + b"\x00tail"]
)
async def test_wrong_type_leaves_no_blob(tmp_path: Path, data: bytes) -> None:
    store = LocalBlobStore(tmp_path / "store")
    with pytest.raises(DisallowedFileType):
        await store_attachment(chunked(data), store=store, wrap_key=fake_wrap, max_size=10**7)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


async def test_nothing_plaintext_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TMPDIR points at an empty directory; afterwards it is still empty and no stored byte is plaintext."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert tempfile.gettempdir() == str(tmpdir)
    store = LocalBlobStore(tmp_path / "store")
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Author"] = CANARY.decode()
    pdf_bytes = io.BytesIO()
    pdf.save(pdf_bytes)
    uploads = [text_upload(20 * 1024 * 1024), pdf_bytes.getvalue()]
    records = [
        await store_attachment(chunked(u, 65536), store=store, wrap_key=fake_wrap, max_size=50 * 1024 * 1024)
        for u in uploads
    ]
    assert list(tmpdir.iterdir()) == []
    files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert len(files) == 2
    for path in files:
        content = path.read_bytes()
        assert CANARY not in content and "法院".encode() not in content
    assert CANARY in (await read_back(store, records[0]))[:1000]


class DiscardingStore(MemoryBlobStore):
    """Counts ciphertext and throws it away, so the memory test measures the pipeline alone."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    async def open_writer(self, blob_id: str):
        store = self
        writer = await super().open_writer(blob_id)

        async def write(data: bytes) -> None:
            store.written += len(data)

        writer.write = write  # type: ignore[method-assign]
        return writer


async def lazy_text(total: int, chunk: int = 65536) -> AsyncIterator[bytes]:
    block = text_upload(chunk)
    sent = 0
    while sent < total:
        yield block
        sent += len(block)


@pytest.mark.slow
async def test_constant_memory_200mb() -> None:
    store = DiscardingStore()
    total = 200 * 1024 * 1024
    tracemalloc.start()
    try:
        record = await store_attachment(
            lazy_text(total), store=store, wrap_key=fake_wrap, max_size=total + 10**6
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.size >= total and record.kind is FileKind.TEXT_UTF8
    assert store.written > record.size
    assert peak < 50 * 1024 * 1024, peak
    os.environ.get("TIPLINE_VERBOSE") and print(f"peak traced memory {peak / 2**20:.1f} MiB")
