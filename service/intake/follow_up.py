"""Receipt holders coming back: look a code up, replace a read-aloud (hotline) code, slow down guessing.

Invariants:
- Every wrong code gets the same answer (:class:`WrongCode`) and the same timing, whatever the reason:
  malformed, unknown, revoked. A malformed code is still hashed and looked up (with a dummy value), and
  every lookup is padded to the same floor duration before it answers.
- Repeated failures are slowed down by in-memory counters keyed by ``HMAC(rotating secret, client)``. The
  secret is random per process and replaced every window, the previous window's table is kept for one more
  window, then dropped: no address is stored, and nothing outlives two windows or a restart.
- A code given out by phone (``Receipt.read_aloud``) is replaced on its first use on the web: the old code
  stops working and the new one is shown only on that screen.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.audit.service import PUBLIC_ACTOR
from service.intake.models import Receipt
from service.intake.receipts import MalformedReceipt, new_receipt_code, normalise_receipt, receipt_hash
from service.messages import service as messages_service
from service.platform.errors import NotFound
from service.platform.runtime import Configured
from service.platform.timeutil import utcnow
from service.registry.models import Clue

_DUMMY_CODE = "0" * 25
RECEIPT_SETTING = "tipline.receipt"  # PostgreSQL: the receipt hash a transaction acts for (hex)


class WrongCode(NotFound):
    """The one answer for every code that does not open a clue."""

    def __init__(self) -> None:
        super().__init__(
            "查询码不正确，或已失效。请核对后重试。",
            message_en="The receipt code is not correct or no longer valid. Check it and try again.",
        )


# --- Plain-words status ------------------------------------------------------------------------------

# The one place that turns internal states into what a reporter reads. Internal detail (who handles it,
# which disposal) is never shown.
# Registry status -> what a receipt holder reads through the API. Never "accepted" (已受理): that is a
# formal decision with its own notice to real-name reporters (the citizen pages say the same, citizen.journey).
_RECEIVED = ("已收到，正在登记分办", "Received; being passed to the right people")
_HANDLING = ("正在核查办理", "Being looked into")
_PLAIN: dict[str, tuple[str, str]] = {
    "registered": _RECEIVED,
    "triaged": _RECEIVED,
    "transferred": _HANDLING,
    "verifying": _HANDLING,
    "disposed": _HANDLING,
    "sent_on": _HANDLING,
    "referred": ("已转交有关部门办理", "Passed to the competent authority"),
    "concluded": ("已办结", "Finished"),
    "archived": ("已办结", "Finished"),
}
_DEFAULT_PLAIN = ("正在办理", "Being handled")


@dataclass(frozen=True)
class PlainStatus:
    zh: str
    en: str


@dataclass(frozen=True)
class ReceiptClue:
    """What a receipt holder's side reads of the clue: no content (the intake role may read no more)."""

    id: str
    status: str
    assignee_id: str | None
    channel: str
    real_name: bool  # a real-name reporter may object to a finding (异议)


def plain_status(clue: ReceiptClue) -> PlainStatus:
    status = clue.status
    if status == "registered" and clue.assignee_id:
        status = "assigned"
    return PlainStatus(*_PLAIN.get(status, _DEFAULT_PLAIN))


# --- Slowing down repeated failures ------------------------------------------------------------------


@dataclass
class _Window:
    secret: bytes
    started: float
    counts: dict[bytes, int] = field(default_factory=dict)


class FailureThrottle:
    """Counts failed lookups per keyed client in two rotating windows; no address is ever stored."""

    def __init__(
        self,
        *,
        window_seconds: float = 600.0,
        free_failures: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
    ) -> None:
        self.window_seconds = window_seconds
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._current = _Window(secrets.token_bytes(32), time.monotonic())
        self._previous: _Window | None = None

    def _rotate(self) -> None:
        now = time.monotonic()
        if now - self._current.started >= self.window_seconds:
            expired = now - self._current.started >= 2 * self.window_seconds
            self._previous = None if expired else self._current
            self._current = _Window(secrets.token_bytes(32), now)

    @staticmethod
    def _key(window: _Window, client: str) -> bytes:
        return hmac.new(window.secret, client.encode("utf-8", "replace"), hashlib.sha256).digest()[:16]

    def failures(self, client: str) -> int:
        self._rotate()
        count = self._current.counts.get(self._key(self._current, client), 0)
        if self._previous is not None:
            count += self._previous.counts.get(self._key(self._previous, client), 0)
        return count

    def record_failure(self, client: str) -> None:
        self._rotate()
        key = self._key(self._current, client)
        self._current.counts[key] = self._current.counts.get(key, 0) + 1

    def delay(self, client: str) -> float:
        excess = self.failures(client) - self.free_failures
        if excess < 0:
            return 0.0
        return min(self.base_delay * (2**excess), self.max_delay)

    def tracked_clients(self) -> int:
        return len(self._current.counts) + (len(self._previous.counts) if self._previous else 0)


def client_address(peer: str | None, forwarded_for: list[str], trusted_hops: int) -> str:
    """Who is calling, for the in-memory throttle and queue only (HMAC input; never stored or logged).

    Behind ``trusted_hops`` reverse proxies the peer is the nearest proxy; each trusted proxy appends the
    address it saw to X-Forwarded-For, so the client is the ``trusted_hops``-th entry from the right.
    Entries further left are written by the client and could be forged, so they are never used. With
    fewer entries than hops (a request that bypassed a proxy), the peer address is used.
    """
    if trusted_hops > 0:
        entries = [e.strip() for header in forwarded_for for e in header.split(",")]
        if len(entries) >= trusted_hops and entries[-trusted_hops]:
            return entries[-trusted_hops][:100]
    return peer or "unknown"


# --- Looking a code up --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedReceipt:
    clue: ReceiptClue
    code: str  # the code that now opens the clue (the replacement, if one was made)
    code_hash: bytes
    replaced: bool  # True: ``code`` is new and must be shown on this screen only
    status: PlainStatus


async def scope_to_receipt(session: AsyncSession, code_hash: bytes) -> None:
    """PostgreSQL: the receipt this transaction acts for. The intake role's row-level policies
    (``custody/db_roles.py``) let it see only that receipt's clue — its status, thread and reporter key —
    and nothing of any other. Lasts until the transaction ends; nothing to do on SQLite."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.set_config(RECEIPT_SETTING, code_hash.hex(), True)))


async def resume(session: AsyncSession, opened: OpenedReceipt) -> None:
    """In a later transaction for a receipt already opened (and checked) in this request."""
    await scope_to_receipt(session, opened.code_hash)


async def open_receipt(
    session: AsyncSession,
    *,
    runtime: Configured,
    code_text: str,
    client: str,
    throttle: FailureThrottle,
    floor_seconds: float = 0.25,
    channel: str = "web",
) -> OpenedReceipt:
    """The clue a code opens, or :class:`WrongCode` with uniform timing.

    ``client`` is whatever distinguishes callers at the edge (the peer address); it is only ever used as
    HMAC input for the throttle. ``channel="web"`` replaces a read-aloud code on first use.
    """
    started = time.monotonic()
    penalty = throttle.delay(client)
    try:
        code, well_formed = normalise_receipt(code_text or ""), True
    except MalformedReceipt:
        code, well_formed = _DUMMY_CODE, False
    digest = receipt_hash(runtime.lookup_key("receipt"), code)
    await scope_to_receipt(session, digest)
    row = (
        await session.execute(
            select(Receipt, Clue.id, Clue.status, Clue.assignee_id, Clue.channel, Clue.real_name)
            .join(Clue, Clue.id == Receipt.clue_id)
            .where(Receipt.code_hash == digest, Receipt.revoked_at.is_(None))
        )
    ).first()
    if row is None or not well_formed:
        throttle.record_failure(client)
        # Give the database connection back before the (possibly long) penalty: otherwise a flood of wrong
        # codes holds every pooled connection asleep and genuine lookups starve. Nothing was written.
        await session.rollback()
        await _pad(started, floor_seconds + penalty)
        raise WrongCode()
    receipt, clue = row[0], ReceiptClue(*row[1:])
    replaced = False
    if receipt.read_aloud and channel == "web":
        new_code = new_receipt_code()
        receipt.revoked_at = utcnow()
        digest = receipt_hash(runtime.lookup_key("receipt"), new_code)
        session.add(Receipt(clue_id=clue.id, code_hash=digest, created_at=utcnow(), read_aloud=False))
        await session.flush()
        await scope_to_receipt(session, digest)  # the old code no longer opens anything
        await messages_service.rewrap_reporter_key(session, clue_id=clue.id, old_code=code, new_code=new_code)
        await audit_service.record(
            session,
            actor=PUBLIC_ACTOR,
            action="receipt.replaced",
            object_type="clue",
            object_id=clue.id,
            details={"receipt_id": receipt.id, "reason": "read_aloud_first_web_use"},
        )
        code, replaced = new_code, True
    else:
        await messages_service.ensure_reporter_key(session, clue_id=clue.id, code=code)
    await _pad(started, floor_seconds + penalty)
    return OpenedReceipt(clue=clue, code=code, code_hash=digest, replaced=replaced, status=plain_status(clue))


async def _pad(started: float, seconds: float) -> None:
    remaining = seconds - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)


def shared_throttle(state: object, settings: object | None = None) -> FailureThrottle:
    """One throttle per application (web pages and the receipt API count failures together)."""
    throttle = getattr(state, "receipt_throttle", None)
    if throttle is None:
        throttle = FailureThrottle(
            window_seconds=float(getattr(settings, "lookup_window_seconds", 600.0)),
            free_failures=int(getattr(settings, "lookup_free_failures", 5)),
        )
        setattr(state, "receipt_throttle", throttle)  # noqa: B010
    return throttle
