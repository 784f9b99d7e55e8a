"""A report is filed once, and its receipt is shown once.

- :class:`SubmissionKeys`: every report form carries a fresh idempotency key (random, timestamped, signed
  with a server key). The database keeps only ``HMAC(key, form key)`` until the key expires
  (``submission_key_max_age_seconds``), in a table of its own that names no clue
  (``service.intake.form_keys``), so a resend reaching any server process is recognised. A second POST
  with the same key while the first is being filed waits for it and gets the same receipt view (after a
  double tap the browser shows only the second answer); after that, "already received". If the first
  fails, the next one files the report.
- :class:`ReceiptViews`: post/redirect/get. ``POST /report`` answers ``303 /receipt`` with the receipt
  sealed (AES-GCM, server key) in a session cookie scoped to ``/receipt``; ``GET /receipt`` opens it once,
  shows it and deletes the cookie; a reload shows "already shown" and files nothing.

The receipt views shown are remembered in the process's memory only: the cookie is deleted when shown, so
only a hand-replayed cookie reaching another process within its 15 minutes could show a code twice — to the
browser that already holds it.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.citizen.guard import _b64, _unb64
from service.intake import form_keys
from service.platform.timeutil import utcnow

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
    """Issues and checks form keys; what was filed is kept in the database (``service.intake.form_keys``),
    so every server process sees it."""

    def __init__(
        self,
        key: bytes,
        *,
        max_age: float,
        write: Callable[[Callable[[Session], Any]], Awaitable[Any]],
        wait_seconds: float = 120.0,
        hold_seconds: float = 15 * 60,
        poll_seconds: float = 0.2,
    ):
        self.key, self.max_age, self.write = key, max_age, write
        self.wait_seconds, self.hold_seconds, self.poll_seconds = wait_seconds, hold_seconds, poll_seconds

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

    async def state(self, form_key: FormKey) -> str | None:
        """``filed``, ``pending`` (a copy is being filed now: a double tap) or ``None``."""
        return await self.write(lambda session: form_keys.look(session, form_key.digest, now=utcnow()))

    async def begin(self, form_key: FormKey) -> Begun:
        deadline = time.monotonic() + self.wait_seconds
        waited = False  # only a copy that waited for the first gets its receipt view; a later resend not
        while True:
            try:
                claim = await self.write(
                    lambda session: form_keys.claim(
                        session,
                        form_key.digest,
                        expires_at=datetime.fromtimestamp(form_key.expires, UTC),
                        now=utcnow(),
                        hold=timedelta(seconds=self.hold_seconds),
                    )
                )
            except IntegrityError:
                continue  # another process inserted it between our look and our insert: look again
            if claim.outcome == "new":
                return Begun("new")
            if claim.outcome == "filed":
                return Begun("joined", claim.view) if waited and claim.view else Begun("duplicate")
            if time.monotonic() >= deadline:
                return Begun("busy")
            waited = True
            await asyncio.sleep(self.poll_seconds)  # the first copy is being filed: wait for its answer

    async def finish(self, form_key: FormKey, view: str | None) -> None:
        """``view``: the report was filed (its receipt view, for a copy of the form waiting on it);
        ``None``: nothing was filed."""
        await self.write(
            lambda session: form_keys.finish(
                session, form_key.digest, view, now=utcnow(), view_seconds=self.wait_seconds
            )
        )


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
