"""IMAP poller (aioimaplib): the alternative to the SMTP receiver for an existing mailbox.

Each round: SELECT the mailbox, UID SEARCH UNSEEN, and for each UID: fetch the raw message, ``ingest`` it
(which commits), and only then mark it (``\\Seen \\Deleted`` + EXPUNGE) or move it to
``TIPLINE_IMAP_DONE_MAILBOX``. A crash between the commit and the mark fetches the message again next round;
the ingest's dedupe makes that a no-op. A message whose ingest fails stays unmarked and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from service.mail.ingest import MailIngest
from service.platform.runtime import Runtime

log = logging.getLogger("tipline.mail.imap")
Ingest = Callable[[bytes], Awaitable[str]]


class ImapClient(Protocol):
    async def uid_search_unseen(self) -> list[str]: ...
    async def fetch(self, uid: str) -> bytes | None: ...
    async def mark_done(self, uid: str) -> None: ...


class AioImapClient:
    """The thin aioimaplib adapter (connect, login, select)."""

    def __init__(self, runtime: Runtime) -> None:
        self.settings = runtime.settings
        self.client: Any = None

    async def connect(self) -> None:
        import aioimaplib

        s = self.settings
        if s.imap_tls:  # the certificate is verified, against TIPLINE_IMAP_TLS_CA_FILE or the system store
            ca_file = str(s.imap_tls_ca_file) if s.imap_tls_ca_file else None
            context = ssl.create_default_context(cafile=ca_file)
            self.client = aioimaplib.IMAP4_SSL(host=s.imap_host, port=s.imap_port, ssl_context=context)
        else:
            self.client = aioimaplib.IMAP4(host=s.imap_host, port=s.imap_port)
        try:
            await self.client.wait_hello_from_server()
        except ssl.SSLCertVerificationError as exc:
            raise ImapTlsUntrusted(
                f"the IMAP server's certificate is not trusted ({exc.verify_message}); "
                "TIPLINE_IMAP_TLS_CA_FILE names the CA to trust"
            ) from exc
        password = s.imap_password.get_secret_value() if s.imap_password else ""
        _expect_ok(await self.client.login(s.imap_username, password), "LOGIN")
        _expect_ok(await self.client.select(s.imap_mailbox), "SELECT")

    async def uid_search_unseen(self) -> list[str]:
        # No CHARSET: the criterion is plain ASCII, and some servers refuse CHARSET they do not know.
        response = await self.client.uid_search("UNSEEN", charset=None)
        _expect_ok(response, "UID SEARCH")
        # The untagged "* SEARCH 3 7" arrives as "3 7" (aioimaplib drops the response name); the last line is
        # the tagged status text ("Search completed (0.001 secs)"), whose numbers are not UIDs.
        uids: list[str] = []
        for line in response.lines[:-1]:
            text = bytes(line).decode("ascii", "replace").strip()
            if text.upper().startswith("SEARCH"):
                text = text[len("SEARCH") :]
            uids.extend(re.findall(r"\d+", text))
        return uids

    async def fetch(self, uid: str) -> bytes | None:
        response = await self.client.uid("fetch", uid, "(BODY.PEEK[])")
        _expect_ok(response, "UID FETCH")
        # aioimaplib hands the message literal over as a bytearray; the other lines (the "n FETCH (UID …
        # BODY[] {size}" line, the closing parenthesis, the tagged status) are bytes.
        for item in response.lines:
            if isinstance(item, bytearray):
                return bytes(item)
        return None

    async def mark_done(self, uid: str) -> None:
        done = self.settings.imap_done_mailbox
        if done:
            _expect_ok(await self.client.uid("move", uid, done), "UID MOVE")
        else:
            _expect_ok(await self.client.uid("store", uid, "+FLAGS", "(\\Seen \\Deleted)"), "UID STORE")
            if "UIDPLUS" in self.client.protocol.capabilities:  # expunge this message only
                _expect_ok(await self.client.uid("expunge", uid), "UID EXPUNGE")
            else:
                _expect_ok(await self.client.expunge(), "EXPUNGE")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.logout()


class ImapTlsUntrusted(Exception):
    """The IMAP server's certificate does not verify: nothing was fetched or marked."""


class ImapCommandFailed(Exception):
    """The server answered NO or BAD. The message names the command only, never the server's text (which
    may quote a mailbox name or an address)."""


def _expect_ok(response: Any, command: str) -> None:
    if getattr(response, "result", "OK") != "OK":
        raise ImapCommandFailed(f"{command} refused by the IMAP server")


async def poll_once(client: ImapClient, ingest: Ingest) -> int:
    """One round; returns how many messages were committed and marked."""
    done = 0
    for uid in await client.uid_search_unseen():
        raw = await client.fetch(uid)
        if raw is None:
            continue
        try:
            await ingest(raw)  # committed (or a duplicate) when this returns
        except Exception as exc:  # noqa: BLE001 - left unmarked: retried next round
            log.warning("imap message deferred", extra={"error": type(exc).__name__})
            continue
        await client.mark_done(uid)
        done += 1
    return done


@contextlib.asynccontextmanager
async def running_poller(runtime: Runtime) -> AsyncIterator[None]:

    ingest = MailIngest(runtime, via="imap")
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            client = AioImapClient(runtime)
            try:
                await client.connect()
                await poll_once(client, ingest)
            except ImapTlsUntrusted as exc:  # a setting to fix, not a server away: say so (and retry)
                log.error("imap poll failed: %s", exc, extra={"error": type(exc).__name__})
            except Exception as exc:  # noqa: BLE001 - the server may be away; try again next round
                log.warning("imap poll failed", extra={"error": type(exc).__name__})
            finally:
                await client.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), runtime.settings.imap_poll_seconds)

    task = asyncio.create_task(loop(), name="tipline-imap")
    try:
        yield
    finally:
        stop.set()
        await task
