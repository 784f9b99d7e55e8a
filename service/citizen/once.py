"""A report is filed once, and its receipt is shown once.

- :class:`SubmissionKeys`: every report form carries a fresh idempotency key (random, timestamped, signed
  with a server key). The server keeps only ``HMAC(key, form key)``, in memory, until the key expires
  (``submission_key_max_age_seconds``); nothing else is stored with it and it is never written to the
  database, a log or the clue. A second POST with the same key while the first is being filed waits for it
  and gets the same receipt view (after a double tap the browser shows only the second answer); after the
  first was filed, it gets "already received". If the first fails, the next one files the report.
- :class:`ReceiptViews`: post/redirect/get. ``POST /report`` answers ``303 /receipt`` with the receipt
  sealed (AES-GCM, server key) in a session cookie scoped to ``/receipt``; ``GET /receipt`` opens it once,
  shows it and deletes the cookie; a reload shows "already shown" and files nothing.

Both live in the process's memory, as the proof-of-work's used challenges do: with several server
processes (``tipline serve --workers N``) a resend that reaches another process is not recognised.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.citizen.guard import _b64, _unb64

RECEIPT_COOKIE = "tl_receipt"


@dataclass(frozen=True)
class FormKey:
    digest: bytes  # HMAC(server key, the form's key): the only thing kept
    expires: float


@dataclass(frozen=True)
class Begun:
    """``new``: file it, then :meth:`SubmissionKeys.finish`; ``joined``: the same form was just filed,
    ``view`` is its receipt view; ``duplicate``: filed before; ``busy``: the first is still being filed."""

    outcome: Literal["new", "joined", "duplicate", "busy"]
    view: str | None = None


class SubmissionKeys:
    def __init__(self, key: bytes, *, max_age: float, wait_seconds: float = 120.0, limit: int = 500_000):
        self.key, self.max_age, self.wait_seconds, self.limit = key, max_age, wait_seconds, limit
        self._done: OrderedDict[bytes, float] = OrderedDict()  # digest -> expiry, oldest first
        self._pending: dict[bytes, asyncio.Future[str | None]] = {}

    def issue(self) -> str:
        body = struct.pack(">Q", int(time.time())) + secrets.token_bytes(16)
        return _b64(body + self._tag(body))

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self.key, b"form\x00" + body, hashlib.sha256).digest()[:12]

    def check(self, token: str | None) -> FormKey | None:
        """The kept form of a valid, unexpired key; ``None`` for a missing, forged or expired one."""
        if not token or len(token) > 64:
            return None
        try:
            raw = _unb64(token)
        except (ValueError, TypeError):
            return None
        if len(raw) != 36 or not hmac.compare_digest(self._tag(raw[:24]), raw[24:]):
            return None
        (issued,) = struct.unpack(">Q", raw[:8])
        now = time.time()
        if not (now - self.max_age <= issued <= now + 60):
            return None
        digest = hmac.new(self.key, b"seen\x00" + raw[:24], hashlib.sha256).digest()
        return FormKey(digest, issued + self.max_age)

    def seen(self, form_key: FormKey) -> bool:
        self._expire()
        return form_key.digest in self._done

    def pending(self, form_key: FormKey) -> bool:
        """The same form is being filed right now (a double tap)."""
        return form_key.digest in self._pending

    async def begin(self, form_key: FormKey) -> Begun:
        while True:
            if self.seen(form_key):
                return Begun("duplicate")
            pending = self._pending.get(form_key.digest)
            if pending is None:
                self._pending[form_key.digest] = asyncio.get_running_loop().create_future()
                return Begun("new")
            try:
                view = await asyncio.wait_for(asyncio.shield(pending), self.wait_seconds)
            except TimeoutError:
                return Begun("busy")
            if view is not None:
                return Begun("joined", view)
            # The first attempt failed and filed nothing: this one files it.

    def finish(self, form_key: FormKey, view: str | None) -> None:
        """``view``: the report was filed (its receipt view, handed to any request waiting on the same key,
        then forgotten); ``None``: nothing was filed."""
        future = self._pending.pop(form_key.digest, None)
        if view is not None:
            self._done[form_key.digest] = form_key.expires
            while len(self._done) > self.limit:
                self._done.popitem(last=False)
        if future is not None and not future.done():
            future.set_result(view)

    def _expire(self) -> None:
        now = time.time()
        while self._done:
            digest, until = next(iter(self._done.items()))
            if until > now:
                break
            self._done.popitem(last=False)


class ReceiptViews:
    def __init__(self, key: bytes, *, max_age: float = 15 * 60) -> None:
        self._aead = AESGCM(hashlib.sha256(b"receipt-view\x00" + key).digest())
        self.max_age = max_age
        self._shown: OrderedDict[str, float] = OrderedDict()  # view ids shown, until they expire

    def seal(self, data: dict[str, Any]) -> str:
        payload = {**data, "id": _b64(secrets.token_bytes(12)), "exp": time.time() + self.max_age}
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, json.dumps(payload).encode("utf-8"), b"tipline receipt view")
        return _b64(nonce + sealed)

    def open_once(self, token: str | None) -> dict[str, Any] | None:
        if not token or len(token) > 2048:
            return None
        try:
            raw = _unb64(token)
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], b"tipline receipt view"))
        except (ValueError, TypeError, InvalidTag):
            return None
        now = time.time()
        while self._shown and next(iter(self._shown.values())) <= now:
            self._shown.popitem(last=False)
        if not isinstance(data, dict) or data.get("exp", 0) <= now or data.get("id") in self._shown:
            return None
        self._shown[data["id"]] = data["exp"]
        return data
