"""Abuse resistance and request integrity for the public pages, all in memory.

- CSRF: a double-submit token. The only cookie before a submission is ``tl_csrf`` (random, HttpOnly,
  SameSite=Strict, no expiry); the form carries ``HMAC(key, cookie)``. A POST whose field does not match
  its cookie, or whose ``Origin`` names another site, is refused before anything is stored.
- Proof-of-work for JavaScript submissions: the form carries a signed, timestamped challenge; the page's
  script finds a nonce with ``SHA-256(challenge ":" nonce)`` starting with ``bits`` zero bits while the
  person types. A valid, unused proof skips the queue. The server checks, it never trusts the client's
  claim (the signature binds the difficulty).
- No-JS submissions (no valid proof) go through :class:`FairQueue`: a bounded number run at once, a
  bounded number wait, first come first served, and each (keyed) client may hold one place at a time.
Client keys are ``HMAC(process secret, peer address)``, kept only while a request waits or runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import struct
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

CSRF_COOKIE = "tl_csrf"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- CSRF -------------------------------------------------------------------------------------------


def new_csrf_cookie() -> str:
    return _b64(secrets.token_bytes(24))


def csrf_field(key: bytes, cookie: str) -> str:
    return hmac.new(key, b"csrf\x00" + cookie.encode("ascii", "replace"), hashlib.sha256).hexdigest()[:40]


def csrf_ok(key: bytes, cookie: str | None, submitted: str | None) -> bool:
    if not cookie or not submitted or len(cookie) > 64 or len(submitted) > 64:
        return False
    return hmac.compare_digest(csrf_field(key, cookie), submitted)


def origin_ok(origin: str | None, host: str | None, fetch_site: str | None = None) -> bool:
    """A cross-site POST is refused. Browsers send ``Origin`` on form POSTs, but under
    ``Referrer-Policy: no-referrer`` Chromium sends ``Origin: null``; then ``Sec-Fetch-Site`` decides, and the
    CSRF token and the SameSite=Strict cookie still have to match."""
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    if origin is None or origin == "null":
        return True
    if not host:
        return False
    return origin.split("://", 1)[-1].rstrip("/") == host


# --- Proof of work ----------------------------------------------------------------------------------


class ProofOfWork:
    def __init__(self, key: bytes, *, bits: int, max_age: float) -> None:
        self.key, self.bits, self.max_age = key, bits, max_age
        self._used: OrderedDict[bytes, float] = OrderedDict()  # challenge ids, until they expire

    def challenge(self) -> str:
        body = struct.pack(">QB", int(time.time()), self.bits) + secrets.token_bytes(12)
        tag = hmac.new(self.key, b"pow\x00" + body, hashlib.sha256).digest()[:12]
        return _b64(body + tag)

    def verify(self, challenge: str | None, nonce: str | None) -> bool:
        if not challenge or not nonce or len(challenge) > 80 or len(nonce) > 20 or not nonce.isdigit():
            return False
        try:
            raw = _unb64(challenge)
        except (ValueError, TypeError):
            return False
        if len(raw) != 33:
            return False
        body, tag = raw[:21], raw[21:]
        if not hmac.compare_digest(hmac.new(self.key, b"pow\x00" + body, hashlib.sha256).digest()[:12], tag):
            return False
        issued, bits = struct.unpack(">QB", body[:9])
        now = time.time()
        if bits < self.bits or not (now - self.max_age <= issued <= now + 60):
            return False
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode("ascii")).digest()
        if int.from_bytes(digest, "big") >> (256 - bits) != 0 if bits else False:
            return False
        self._expire(now)
        if body in self._used:
            return False  # replayed
        self._used[body] = issued + self.max_age
        return True

    def _expire(self, now: float) -> None:
        while self._used:
            body, until = next(iter(self._used.items()))
            if until > now:
                break
            self._used.popitem(last=False)


def solve(challenge: str, bits: int) -> str:
    """Reference solver (tests and benchmarks); the page does the same in JavaScript."""
    nonce = 0
    while True:
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode("ascii")).digest()
        if bits == 0 or int.from_bytes(digest, "big") >> (256 - bits) == 0:
            return str(nonce)
        nonce += 1


# --- The fair queue for no-JS submissions -----------------------------------------------------------


class QueueFull(Exception):
    """No place in the queue (or this client already holds one): try again later."""


class FairQueue:
    def __init__(self, *, concurrency: int, waiting: int, wait_seconds: float) -> None:
        self.concurrency, self.max_waiting, self.wait_seconds = concurrency, waiting, wait_seconds
        self._secret = secrets.token_bytes(32)
        self._running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._holders: set[bytes] = set()

    def _key(self, client: str) -> bytes:
        return hmac.new(self._secret, client.encode("utf-8", "replace"), hashlib.sha256).digest()[:16]

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[None]:
        key = self._key(client)
        if key in self._holders:
            raise QueueFull("one place per client")
        if self._running >= self.concurrency and len(self._waiters) >= self.max_waiting:
            raise QueueFull("queue full")
        self._holders.add(key)
        try:
            if self._running >= self.concurrency:
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(future)
                try:
                    await asyncio.wait_for(asyncio.shield(future), self.wait_seconds)
                except TimeoutError:
                    if future.done():
                        self._release()  # handed a place just as the wait ran out: pass it on
                    else:
                        future.cancel()
                        self._waiters.remove(future)
                    raise QueueFull("waited too long") from None
            else:
                self._running += 1
            try:
                yield
            finally:
                self._release()
        finally:
            self._holders.discard(key)

    def _release(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)  # the place passes straight to the next in line
                return
        self._running -= 1
