"""The built-in SMTP receiver for the tip mailbox (aiosmtpd).

Invariants:

* Never an open relay: a recipient outside `accepted_addresses` gets `550` at RCPT time.
* The size limit is enforced in the conversation: SIZE is advertised, a declared size over the limit gets
  `552` at MAIL FROM, and undeclared oversize data gets `552` after DATA; the ingest callback never sees it.
* `250` is answered only after `ingest(raw)` has returned, i.e. after the message is durably committed.
  Any failure of `ingest` answers `451 4.3.0` so that the sending server retries: mail is never lost.
  A client that hangs up while `ingest` runs does not cancel it (the commit finishes; the sender's retry
  is deduplicated by the intake on Message-ID plus content hash).
* Nothing identifying is logged: no envelope address, peer IP, host name or content. aiosmtpd's own
  "mail.log" logger (which logs peers and command lines) is filtered down to content-free warnings.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from service.mail.parse import looks_like_mail

log = logging.getLogger(__name__)

Ingest = Callable[[bytes], Awaitable[str]]

DEFAULT_MAX_SIZE = 25 * 1024 * 1024
# RFC 5321 allows 1000 octets per line, but real clients send longer HTML and header lines; refusing them
# would bounce a citizen's tip. The total is still bounded by the size limit.
DATA_LINE_LIMIT = 1024 * 1024
SESSION_TIMEOUT_SECONDS = 120
MAX_RECIPIENTS = 20


class TemporarilyUnavailable(Exception):
    """Raised by the ingest callback when the message cannot be committed now (e.g. database down).
    The receiver answers 451 so the sending server retries later."""


class _ContentFreeAiosmtpdLog(logging.Filter):
    """aiosmtpd logs peer addresses, envelope addresses and DATA lines on "mail.log". Drop everything
    below WARNING and strip the rest down to its level and exception type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        exc_type = record.exc_info[0] if record.exc_info else None
        record.msg = "SMTP session problem (details suppressed)"
        if exc_type is not None:
            record.msg += f": {exc_type.__name__}"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


_AIOSMTPD_FILTER = _ContentFreeAiosmtpdLog()


def silence_aiosmtpd_logging() -> None:
    """Install the content-free filter on aiosmtpd's logger (idempotent)."""
    logger = logging.getLogger("mail.log")
    if _AIOSMTPD_FILTER not in logger.filters:
        logger.addFilter(_AIOSMTPD_FILTER)


def _normalize_address(address: str) -> str:
    return address.strip().strip("<>").strip().casefold()


class TipMailHandler:
    """aiosmtpd handler: accepts mail for the tip addresses only and hands each message to `ingest`."""

    def __init__(
        self, *, ingest: Ingest, accepted_addresses: Iterable[str], reject_non_mail: bool = True
    ) -> None:
        self._ingest = ingest
        self._accepted = frozenset(_normalize_address(address) for address in accepted_addresses)
        self._reject_non_mail = reject_non_mail
        # Ingest calls whose client went away; kept referenced so they finish (and can be awaited on stop).
        self.pending: set[asyncio.Task[str]] = set()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if _normalize_address(address) not in self._accepted:
            return "550 5.7.1 Recipient not accepted here; this server does not relay"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content
        if not isinstance(raw, bytes):
            raw = bytes(raw or b"")
        if self._reject_non_mail and not looks_like_mail(raw):
            return "554 5.6.0 Data is not an Internet mail message"
        task = asyncio.ensure_future(self._ingest(raw))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        try:
            # Shielded: a dropped connection must not cancel a commit half way.
            await asyncio.shield(task)
        except TemporarilyUnavailable:
            log.warning("mail deferred: intake temporarily unavailable")
            return "451 4.3.0 Temporarily unable to accept the message; please try again later"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never lose mail: any failure makes the sender retry
            log.error("mail deferred: intake failed (%s)", type(exc).__name__)
            return "451 4.3.0 Temporarily unable to accept the message; please try again later"
        return "250 2.0.0 Message accepted"


class _TiplineSMTP(SMTP):
    line_length_limit = DATA_LINE_LIMIT


def _smtp_kwargs(max_size: int, tls_context: ssl.SSLContext | None, server_hostname: str) -> dict[str, Any]:
    return {
        "data_size_limit": max_size,
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "hostname": server_hostname,
        "ident": "Tipline ESMTP",
        "tls_context": tls_context,
        "require_starttls": False,
        "timeout": SESSION_TIMEOUT_SECONDS,
    }


def tls_context_from_files(certfile: str, keyfile: str) -> ssl.SSLContext:
    """Server-side STARTTLS context from a PEM certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _TiplineSMTP(self.handler, **self.SMTP_kwargs)


def start_receiver(
    host: str,
    port: int,
    ingest: Ingest,
    accepted_addresses: Iterable[str],
    max_size: int = DEFAULT_MAX_SIZE,
    tls_context: ssl.SSLContext | None = None,
    *,
    server_hostname: str = "tipline.local",
    reject_non_mail: bool = True,
) -> Controller:
    """Start the receiver on its own thread and event loop; call `.stop()` on the result to stop it.
    `ingest` runs on that thread's loop, so it must not use resources bound to another loop; inside a
    running application use `serve_receiver` instead."""
    silence_aiosmtpd_logging()
    handler = TipMailHandler(
        ingest=ingest, accepted_addresses=accepted_addresses, reject_non_mail=reject_non_mail
    )
    kwargs = _smtp_kwargs(max_size, tls_context, server_hostname)
    del kwargs["hostname"]  # Controller's `hostname` is the bind address; SMTP's comes from server_hostname
    controller = _Controller(handler, hostname=host, port=port, server_hostname=server_hostname, **kwargs)
    controller.start()
    return controller


class RunningReceiver:
    """A receiver serving on the current event loop."""

    def __init__(self, server: asyncio.AbstractServer, handler: TipMailHandler, sessions: set[SMTP]) -> None:
        self._server = server
        self._handler = handler
        self._sessions = sessions

    @property
    def port(self) -> int:
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening, close open sessions, and let commits already under way finish."""
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        if self._handler.pending:
            await asyncio.gather(*self._handler.pending, return_exceptions=True)

    async def __aenter__(self) -> RunningReceiver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve_receiver(
    host: str,
    port: int,
    ingest: Ingest,
    accepted_addresses: Iterable[str],
    max_size: int = DEFAULT_MAX_SIZE,
    tls_context: ssl.SSLContext | None = None,
    *,
    server_hostname: str = "tipline.local",
    reject_non_mail: bool = True,
) -> RunningReceiver:
    """Start the receiver on the running event loop (port 0 picks a free port; see `.port`)."""
    silence_aiosmtpd_logging()
    handler = TipMailHandler(
        ingest=ingest, accepted_addresses=accepted_addresses, reject_non_mail=reject_non_mail
    )
    kwargs = _smtp_kwargs(max_size, tls_context, server_hostname)
    sessions: set[SMTP] = set()

    def make_session() -> SMTP:
        session = _TiplineSMTP(handler, **kwargs)
        sessions.add(session)
        original_lost = session.connection_lost

        def connection_lost(error: Exception | None) -> None:
            sessions.discard(session)
            original_lost(error)

        session.connection_lost = connection_lost  # type: ignore[method-assign]
        return session

    server = await asyncio.get_running_loop().create_server(make_session, host=host, port=port)
    return RunningReceiver(server, handler, sessions)
