"""Sending one message: a small protocol, the aiosmtplib relay implementation and a test fake."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from service.platform.settings import Settings


class Sender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class RelayNotConfigured(Exception):
    """TIPLINE_RELAY_HOST is not set."""


class RelayTlsUntrusted(Exception):
    """The relay's certificate does not verify (STARTTLS): nothing was sent; the message is retried."""


class SmtpRelaySender:
    """Hands mail to the configured relay (aiosmtplib). Errors propagate as exception types only."""

    def __init__(self, settings: Settings) -> None:
        if not settings.relay_host:
            raise RelayNotConfigured("no relay configured")
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        # STARTTLS verifies the relay's certificate against TIPLINE_RELAY_TLS_CA_FILE or the system store.
        context = ssl.create_default_context(cafile=str(s.relay_tls_ca_file) if s.relay_tls_ca_file else None)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.relay_host,
                port=s.relay_port,
                start_tls=s.relay_starttls,
                tls_context=context,
                username=s.relay_username or None,
                password=s.relay_password.get_secret_value() if s.relay_password else None,
                timeout=s.relay_timeout_seconds,
            )
        except (ssl.SSLCertVerificationError, aiosmtplib.SMTPException) as exc:
            cause = exc if isinstance(exc, ssl.SSLCertVerificationError) else exc.__cause__
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise RelayTlsUntrusted(
                    f"the relay's certificate is not trusted ({cause.verify_message}); "
                    "TIPLINE_RELAY_TLS_CA_FILE names the CA to trust"
                ) from exc
            raise


class MemorySender:
    """Collects messages (tests)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)
