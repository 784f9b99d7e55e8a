"""Self-describing ciphertext envelopes.

Every ciphertext Tipline stores is one envelope: the suite that made it, the id of the key it was sealed
to, the KEM encapsulation and the AEAD ciphertext. The binding (table, record id and field) goes into the
HPKE ``info`` together with the suite and key id, so an envelope copied onto another record or field, or
relabelled with another suite or key, fails to open.

Binary layout (all lengths big-endian)::

    b"TLE1" | u8 len | suite (ascii) | u8 len | key_id (ascii) | u16 len | enc | ct
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

MAGIC = b"TLE1"


class EnvelopeError(ValueError):
    """An envelope is malformed, sealed to an unknown key, or fails authentication."""


@dataclass(frozen=True, slots=True)
class Envelope:
    suite: str
    key_id: str
    enc: bytes
    ct: bytes

    def to_bytes(self) -> bytes:
        suite = self.suite.encode("ascii")
        key_id = self.key_id.encode("ascii")
        return b"".join(
            (
                MAGIC,
                struct.pack(">B", len(suite)),
                suite,
                struct.pack(">B", len(key_id)),
                key_id,
                struct.pack(">H", len(self.enc)),
                self.enc,
                self.ct,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            if data[:4] != MAGIC:
                raise EnvelopeError("not a Tipline envelope")
            pos = 4
            (n,) = struct.unpack_from(">B", data, pos)
            suite = data[pos + 1 : pos + 1 + n].decode("ascii")
            pos += 1 + n
            (n,) = struct.unpack_from(">B", data, pos)
            key_id = data[pos + 1 : pos + 1 + n].decode("ascii")
            pos += 1 + n
            (n,) = struct.unpack_from(">H", data, pos)
            enc = data[pos + 2 : pos + 2 + n]
            pos += 2 + n
            if len(enc) != n or not suite or not key_id:
                raise EnvelopeError("truncated envelope")
            return cls(suite=suite, key_id=key_id, enc=enc, ct=data[pos:])
        except (struct.error, UnicodeDecodeError, TypeError) as exc:
            raise EnvelopeError("malformed envelope") from exc

    def to_json(self) -> dict[str, str]:
        """The same envelope as JSON, for exports and documentation."""
        b64 = base64.b64encode
        return {
            "suite": self.suite,
            "key_id": self.key_id,
            "enc": b64(self.enc).decode(),
            "ct": b64(self.ct).decode(),
        }


def hpke_info(suite: str, key_id: str, binding: str) -> bytes:
    """What each envelope is bound to: suite, key and the record field it belongs to."""
    return b"\x00".join((b"tipline/v1", suite.encode(), key_id.encode(), binding.encode("utf-8")))


__all__ = ["Envelope", "EnvelopeError", "InvalidTag", "hpke_info"]
