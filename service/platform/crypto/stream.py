"""Chunked authenticated encryption of byte streams (the STREAM construction, as age and Tink use it).

A stream is ``header || segment_0 || ... || segment_n``. Every plaintext segment is ``segment_size`` bytes
except the last, which holds 0..``segment_size`` bytes; each is sealed on its own with an AEAD and carries a
16-byte tag.

Header (40 bytes, authenticated as associated data of every segment)::

    magic "TPS1" | version u8 | suite u8 | segment_size u32 BE | salt 16 | nonce_prefix 7 | reserved 7

Segment key: ``HKDF(ikm=file_key, salt=salt, info="tipline/stream/v1" || 0x00 || binding)``, so a stream
only opens under the binding it was written for (e.g. ``"attachment/<id>"``), and a file key reused by
mistake still yields fresh segment keys.

Segment nonce (12 bytes): ``nonce_prefix (7) || counter u32 BE || last_flag u8``.

Security invariants:
- Decryption releases a segment's plaintext only after its tag verified.
- Reordering or dropping segments breaks the counter; cutting the stream at a segment boundary leaves a
  final segment sealed with ``last_flag = 0``; appending after the real last segment makes that segment
  non-final: all of these fail authentication.
- Memory is bounded by one segment plus the caller's chunk, whatever the stream's length.

The file key is a raw 32-byte secret; wrapping it (HPKE, case key) is the caller's job.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"TPS1"
VERSION = 1
FILE_KEY_SIZE = 32
TAG_SIZE = 16
SALT_SIZE = 16
NONCE_PREFIX_SIZE = 7
DEFAULT_SEGMENT_SIZE = 64 * 1024
MIN_SEGMENT_SIZE = 1024
MAX_SEGMENT_SIZE = 16 * 1024 * 1024
_MAX_COUNTER = 2**32 - 1
_HEADER = struct.Struct(">4sBBI16s7s7x")
HEADER_SIZE = _HEADER.size
_INFO_PREFIX = b"tipline/stream/v1\x00"


class Suite(enum.IntEnum):
    """Algorithm suite named in every stream header, so deployments can switch without code changes."""

    AES256_GCM_HKDF_SHA256 = 1
    SM4_GCM_HKDF_SM3 = 2


class StreamError(Exception):
    """Base class: the stream cannot be opened. Messages never include key or content material."""


class StreamFormatError(StreamError):
    """The header is malformed or names an unknown version or suite."""


class StreamAuthenticationError(StreamError):
    """A segment failed verification: tampered, reordered, extended, or the wrong key or binding."""


class StreamTruncatedError(StreamError):
    """The stream ended before its final segment."""


def generate_file_key() -> bytes:
    """A fresh random 32-byte file key."""
    return os.urandom(FILE_KEY_SIZE)


@dataclass(frozen=True, slots=True)
class StreamHeader:
    suite: Suite
    segment_size: int
    salt: bytes
    nonce_prefix: bytes

    def encode(self) -> bytes:
        return _HEADER.pack(MAGIC, VERSION, self.suite, self.segment_size, self.salt, self.nonce_prefix)

    @classmethod
    def decode(cls, data: bytes) -> StreamHeader:
        if len(data) != HEADER_SIZE:
            raise StreamFormatError("stream header has the wrong length")
        magic, version, suite, segment_size, salt, nonce_prefix = _HEADER.unpack(data)
        if magic != MAGIC or version != VERSION:
            raise StreamFormatError("not a supported stream")
        try:
            suite = Suite(suite)
        except ValueError:
            raise StreamFormatError("unknown stream suite") from None
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise StreamFormatError("segment size out of range")
        if data[-7:] != bytes(7):
            raise StreamFormatError("reserved header bytes are set")
        return cls(suite=suite, segment_size=segment_size, salt=salt, nonce_prefix=nonce_prefix)


class _SegmentCipher:
    """One derived key and the per-segment seal/open for a suite."""

    def __init__(self, file_key: bytes, binding: str, header: StreamHeader, header_bytes: bytes) -> None:
        if len(file_key) != FILE_KEY_SIZE:
            raise ValueError("file key must be 32 bytes")
        if not binding:
            raise ValueError("binding must not be empty")
        self._suite = header.suite
        self._prefix = header.nonce_prefix
        self._aad = header_bytes
        info = _INFO_PREFIX + binding.encode("utf-8")
        if header.suite is Suite.AES256_GCM_HKDF_SHA256:
            key = HKDF(hashes.SHA256(), 32, header.salt, info).derive(file_key)
            self._aead: AESGCM | None = AESGCM(key)
            self._sm4_key = b""
        else:
            self._aead = None
            self._sm4_key = HKDF(hashes.SM3(), 16, header.salt, info).derive(file_key)

    def _nonce(self, counter: int, last: bool) -> bytes:
        if counter > _MAX_COUNTER:
            raise StreamError("stream has too many segments")
        return self._prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")

    def seal(self, counter: int, last: bool, plaintext: bytes) -> bytes:
        nonce = self._nonce(counter, last)
        if self._aead is not None:
            return self._aead.encrypt(nonce, plaintext, self._aad)
        enc = Cipher(algorithms.SM4(self._sm4_key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(self._aad)
        body = enc.update(plaintext) + enc.finalize()
        return body + enc.tag

    def open(self, counter: int, last: bool, ciphertext: bytes) -> bytes:
        nonce = self._nonce(counter, last)
        try:
            if self._aead is not None:
                return self._aead.decrypt(nonce, ciphertext, self._aad)
            if len(ciphertext) < TAG_SIZE:
                raise InvalidTag
            dec = Cipher(algorithms.SM4(self._sm4_key), modes.GCM(nonce, ciphertext[-TAG_SIZE:])).decryptor()
            dec.authenticate_additional_data(self._aad)
            # The GCM decryptor's output is only trusted after finalize() has checked the tag.
            out = dec.update(ciphertext[:-TAG_SIZE])
            dec.finalize()
            return out
        except InvalidTag:
            raise StreamAuthenticationError("stream segment failed authentication") from None


class StreamEncryptor:
    """Push-style encryptor: ``header()``, then ``update()`` for each chunk, then ``finalize()`` once.

    ``update`` returns the ciphertext of the segments completed so far. A full segment is only sealed once
    more data follows it, because the last segment (sealed by ``finalize``) may itself be full.
    """

    def __init__(
        self,
        file_key: bytes,
        binding: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        suite: Suite = Suite.AES256_GCM_HKDF_SHA256,
    ) -> None:
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise ValueError("segment size out of range")
        self._header = StreamHeader(
            suite=Suite(suite),
            segment_size=segment_size,
            salt=os.urandom(SALT_SIZE),
            nonce_prefix=os.urandom(NONCE_PREFIX_SIZE),
        )
        self._header_bytes = self._header.encode()
        self._cipher = _SegmentCipher(file_key, binding, self._header, self._header_bytes)
        self._segment_size = segment_size
        self._buffer = bytearray()
        self._counter = 0
        self._finalized = False

    @property
    def segments(self) -> int:
        """Segments sealed so far (after ``finalize``: the total, including the final one)."""
        return self._counter

    def header(self) -> bytes:
        return self._header_bytes

    def update(self, data: bytes) -> bytes:
        if self._finalized:
            raise StreamError("encryptor already finalized")
        self._buffer += data
        size = self._segment_size
        if len(self._buffer) <= size:
            return b""
        out = bytearray()
        offset = 0
        # Keep at least one byte back so the final segment is never empty unless the whole stream is.
        while len(self._buffer) - offset > size:
            segment = bytes(self._buffer[offset : offset + size])
            out += self._cipher.seal(self._counter, False, segment)
            self._counter += 1
            offset += size
        del self._buffer[:offset]
        return bytes(out)

    def finalize(self) -> bytes:
        if self._finalized:
            raise StreamError("encryptor already finalized")
        self._finalized = True
        sealed = self._cipher.seal(self._counter, True, bytes(self._buffer))
        self._counter += 1
        self._buffer.clear()
        return sealed


class StreamDecryptor:
    """Push-style decryptor: feed the stored bytes (header first) to ``update``, then call ``finalize``.

    Plaintext is returned only for segments whose tag verified. Until ``finalize`` succeeds the caller
    must treat everything released so far as provisional (the stream may still turn out truncated).
    """

    def __init__(self, file_key: bytes, binding: str) -> None:
        if len(file_key) != FILE_KEY_SIZE:
            raise ValueError("file key must be 32 bytes")
        self._file_key = file_key
        self._binding = binding
        self._cipher: _SegmentCipher | None = None
        self._sealed_size = 0
        self._buffer = bytearray()
        self._counter = 0
        self._finalized = False

    def update(self, data: bytes) -> bytes:
        if self._finalized:
            raise StreamError("decryptor already finalized")
        self._buffer += data
        if self._cipher is None:
            if len(self._buffer) < HEADER_SIZE:
                return b""
            header_bytes = bytes(self._buffer[:HEADER_SIZE])
            header = StreamHeader.decode(header_bytes)
            self._cipher = _SegmentCipher(self._file_key, self._binding, header, header_bytes)
            self._sealed_size = header.segment_size + TAG_SIZE
            del self._buffer[:HEADER_SIZE]
        sealed = self._sealed_size
        out = bytearray()
        offset = 0
        # A full sealed segment is opened as non-final only once bytes beyond it prove it is not the last.
        while len(self._buffer) - offset > sealed:
            out += self._cipher.open(self._counter, False, bytes(self._buffer[offset : offset + sealed]))
            self._counter += 1
            offset += sealed
        if offset:
            del self._buffer[:offset]
        return bytes(out)

    def finalize(self) -> bytes:
        if self._finalized:
            raise StreamError("decryptor already finalized")
        self._finalized = True
        if self._cipher is None:
            raise StreamTruncatedError("stream ended inside its header")
        if len(self._buffer) < TAG_SIZE:
            raise StreamTruncatedError("stream ended before its final segment")
        plaintext = self._cipher.open(self._counter, True, bytes(self._buffer))
        self._buffer.clear()
        return plaintext


def encrypt_stream_sync(
    file_key: bytes, binding: str, chunks: Iterable[bytes], *, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> Iterator[bytes]:
    """Encrypt an iterable of plaintext chunks; yields the header, then ciphertext as segments complete."""
    encryptor = StreamEncryptor(file_key, binding, segment_size=segment_size)
    yield encryptor.header()
    for chunk in chunks:
        if out := encryptor.update(chunk):
            yield out
    yield encryptor.finalize()


def decrypt_stream_sync(file_key: bytes, binding: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decrypt stored bytes; yields each segment's plaintext after it verified. Raises ``StreamError``."""
    decryptor = StreamDecryptor(file_key, binding)
    for chunk in chunks:
        if out := decryptor.update(chunk):
            yield out
    if out := decryptor.finalize():
        yield out


async def decrypt_stream(file_key: bytes, binding: str, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Async variant of :func:`decrypt_stream_sync` (e.g. over ``BlobStore.open_reader``)."""
    decryptor = StreamDecryptor(file_key, binding)
    async for chunk in chunks:
        if out := decryptor.update(chunk):
            yield out
    if out := decryptor.finalize():
        yield out
