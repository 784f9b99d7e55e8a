"""Attachment pipeline tests: a reversible stand-in for key wrapping, chunked uploads, reading a stored
record back."""

from __future__ import annotations

from collections.abc import AsyncIterator

from service.platform.crypto.stream import decrypt_stream

WRAP = bytes(range(32))


def fake_wrap(file_key: bytes, binding: str) -> bytes:
    """Stands in for HPKE wrapping: reversible XOR, enough to recover the key in tests."""
    return bytes(a ^ b for a, b in zip(file_key, WRAP, strict=True)) + binding.encode()


def unwrap(wrapped: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(wrapped[:32], WRAP, strict=True))


async def chunked(data: bytes, step: int = 8192) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def read_back(store, record) -> bytes:  # type: ignore[no-untyped-def]
    key = unwrap(record.wrapped_key)
    return b"".join([c async for c in decrypt_stream(key, record.binding, store.open_reader(record.blob_id))])
