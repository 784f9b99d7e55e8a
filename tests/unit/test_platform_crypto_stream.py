import os
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest

from service.platform.crypto.stream import (
    HEADER_SIZE,
    TAG_SIZE,
    StreamAuthenticationError,
    StreamDecryptor,
    StreamEncryptor,
    StreamError,
    StreamFormatError,
    StreamTruncatedError,
    Suite,
    decrypt_stream,
    decrypt_stream_sync,
    encrypt_stream_sync,
    generate_file_key,
)

SEG = 1024
BINDING = "attachment/0123"


def encrypt(data: bytes, key: bytes, binding: str = BINDING, suite: Suite = Suite.AES256_GCM_HKDF_SHA256):
    enc = StreamEncryptor(key, binding, segment_size=SEG, suite=suite)
    return enc.header() + enc.update(data) + enc.finalize()


def decrypt(blob: bytes, key: bytes, binding: str = BINDING, step: int = 777) -> bytes:
    return b"".join(
        decrypt_stream_sync(key, binding, (blob[i : i + step] for i in range(0, len(blob), step)))
    )


def segments(blob: bytes) -> list[bytes]:
    body = blob[HEADER_SIZE:]
    n = SEG + TAG_SIZE
    return [body[i : i + n] for i in range(0, len(body), n)]


@pytest.mark.parametrize("suite", list(Suite))
@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 3 * SEG + 5])
def test_round_trip(size: int, suite: Suite) -> None:
    key = generate_file_key()
    data = os.urandom(size)
    blob = encrypt(data, key, suite=suite)
    assert len(blob) == HEADER_SIZE + max(1, -(-size // SEG)) * TAG_SIZE + size
    for step in (1, 100, SEG + TAG_SIZE, len(blob) or 1):
        assert decrypt(blob, key, step=step) == data


def test_update_in_odd_chunks_matches_sizes() -> None:
    key = generate_file_key()
    enc = StreamEncryptor(key, BINDING, segment_size=SEG)
    data = os.urandom(10 * SEG + 17)
    out = [enc.header()]
    for i in range(0, len(data), 333):
        out.append(enc.update(data[i : i + 333]))
    out.append(enc.finalize())
    assert enc.segments == 11
    assert decrypt(b"".join(out), key) == data


def test_full_final_segment_is_sealed_last() -> None:
    key = generate_file_key()
    enc = StreamEncryptor(key, BINDING, segment_size=SEG)
    assert enc.update(b"x" * SEG) == b""  # may still be the last one
    assert len(enc.finalize()) == SEG + TAG_SIZE


def test_wrong_binding_and_wrong_key_rejected() -> None:
    key = generate_file_key()
    blob = encrypt(b"hello" * 500, key)
    with pytest.raises(StreamAuthenticationError):
        decrypt(blob, key, binding="attachment/9999")
    with pytest.raises(StreamAuthenticationError):
        decrypt(blob, generate_file_key())


def test_tampered_byte_rejected_everywhere() -> None:
    key = generate_file_key()
    blob = encrypt(os.urandom(3 * SEG + 10), key)
    for pos in (HEADER_SIZE - 8, HEADER_SIZE + 5, HEADER_SIZE + SEG + TAG_SIZE + 1, len(blob) - 1, 10, 20):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(StreamError):
            decrypt(bytes(bad), key)


def test_header_tamper_is_a_format_or_auth_error() -> None:
    key = generate_file_key()
    blob = bytearray(encrypt(b"abc", key))
    blob[0] ^= 1
    with pytest.raises(StreamFormatError):
        decrypt(bytes(blob), key)


def test_truncation_at_segment_boundary_rejected() -> None:
    key = generate_file_key()
    blob = encrypt(os.urandom(3 * SEG + 10), key)
    parts = segments(blob)
    truncated = blob[:HEADER_SIZE] + b"".join(parts[:2])
    with pytest.raises(StreamAuthenticationError):
        decrypt(truncated, key)


def test_truncation_mid_segment_and_header_rejected() -> None:
    key = generate_file_key()
    blob = encrypt(os.urandom(3 * SEG), key)
    with pytest.raises(StreamAuthenticationError):
        decrypt(blob[:-5], key)
    with pytest.raises(StreamTruncatedError):
        decrypt(blob[: HEADER_SIZE - 1], key)
    with pytest.raises(StreamTruncatedError):
        decrypt(blob[: HEADER_SIZE + 3], key)
    with pytest.raises(StreamTruncatedError):
        decrypt(b"", key)


def test_reorder_rejected() -> None:
    key = generate_file_key()
    blob = encrypt(os.urandom(3 * SEG + 10), key)
    p = segments(blob)
    with pytest.raises(StreamAuthenticationError):
        decrypt(blob[:HEADER_SIZE] + p[1] + p[0] + p[2] + p[3], key)


def test_extension_rejected() -> None:
    key = generate_file_key()
    blob = encrypt(os.urandom(2 * SEG), key)
    with pytest.raises(StreamAuthenticationError):
        decrypt(blob + b"\x00" * (SEG + TAG_SIZE), key)
    with pytest.raises(StreamAuthenticationError):
        decrypt(blob + b"x", key)
    # A valid segment from another stream under the same key and binding does not splice in either.
    other = encrypt(os.urandom(2 * SEG), key)
    with pytest.raises(StreamAuthenticationError):
        decrypt(blob + segments(other)[-1], key)


def test_no_plaintext_released_before_verification() -> None:
    key = generate_file_key()
    blob = bytearray(encrypt(b"A" * (2 * SEG), key))
    blob[HEADER_SIZE + 3] ^= 1
    dec = StreamDecryptor(key, BINDING)
    with pytest.raises(StreamAuthenticationError):
        dec.update(bytes(blob))


def test_encrypt_stream_sync_helper() -> None:
    key = generate_file_key()
    data = os.urandom(5 * SEG + 1)
    blob = b"".join(encrypt_stream_sync(key, BINDING, [data[:100], data[100:]], segment_size=SEG))
    assert decrypt(blob, key) == data


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        StreamEncryptor(b"short", BINDING)
    with pytest.raises(ValueError):
        StreamEncryptor(generate_file_key(), "")
    with pytest.raises(ValueError):
        StreamEncryptor(generate_file_key(), BINDING, segment_size=10)
    enc = StreamEncryptor(generate_file_key(), BINDING)
    enc.finalize()
    with pytest.raises(StreamError):
        enc.update(b"x")


async def _aiter(blob: bytes, step: int) -> AsyncIterator[bytes]:
    for i in range(0, len(blob), step):
        yield blob[i : i + step]


async def test_async_decrypt_round_trip_and_failure() -> None:
    key = generate_file_key()
    data = os.urandom(4 * SEG + 3)
    blob = encrypt(data, key)
    out = [c async for c in decrypt_stream(key, BINDING, _aiter(blob, 500))]
    assert b"".join(out) == data
    with pytest.raises(StreamTruncatedError):
        _ = [c async for c in decrypt_stream(key, BINDING, _aiter(blob[:HEADER_SIZE], 500))]


def _lazy(total: int, chunk: int) -> Iterator[bytes]:
    block = os.urandom(chunk)
    for _ in range(total // chunk):
        yield block


@pytest.mark.slow
def test_constant_memory_on_large_stream() -> None:
    """64 MB through encrypt and decrypt in one pipeline; peak traced memory stays at a few segments."""
    key = generate_file_key()
    total = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        ciphertext = encrypt_stream_sync(key, BINDING, _lazy(total, 100_000 + 7))
        count = sum(len(c) for c in decrypt_stream_sync(key, BINDING, ciphertext))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == (total // 100_007) * 100_007
    assert peak < 4 * 1024 * 1024
