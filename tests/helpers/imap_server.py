"""A minimal IMAP4rev1 server for tests (asyncio, loopback only): enough of RFC 3501 (with MOVE, RFC 6851,
and UIDPLUS) for aioimaplib and the poller — CAPABILITY, LOGIN, SELECT/EXAMINE, UID SEARCH, UID FETCH
(BODY.PEEK[], BODY[], RFC822), UID STORE ±FLAGS, EXPUNGE, UID EXPUNGE, UID MOVE, NOOP, LOGOUT.

It keeps mailboxes in memory and records every command (``events``, tag stripped, LOGIN's password
hidden) so tests can check what the client did and in which order.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field

CAPABILITIES = "IMAP4rev1 MOVE UIDPLUS"


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Mailbox:
    messages: list[StoredMessage] = field(default_factory=list)
    next_uid: int = 1

    def append(self, raw: bytes, flags: set[str] | None = None) -> int:
        uid = self.next_uid
        self.next_uid += 1
        self.messages.append(StoredMessage(uid, raw, set(flags or ())))
        return uid

    def seq_of(self, uid: int) -> int:
        return next(i for i, m in enumerate(self.messages, 1) if m.uid == uid)


def _uid_set(spec: str, box: Mailbox) -> list[StoredMessage]:
    top = max((m.uid for m in box.messages), default=0)
    wanted: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition(":")
        first = top if low == "*" else int(low)
        last = first if not high else (top if high == "*" else int(high))
        wanted.update(range(min(first, last), max(first, last) + 1))
    return [m for m in box.messages if m.uid in wanted]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


class ImapServer:
    def __init__(self, username: str, password: str, ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context``: IMAP over TLS (implicit TLS, as on port 993) with this server context."""
        self.username, self.password = username, password
        self.ssl_context = ssl_context
        self.mailboxes: dict[str, Mailbox] = {"INBOX": Mailbox(), "Processed": Mailbox()}
        self.events: list[str] = []
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None

    @property
    def inbox(self) -> Mailbox:
        return self.mailboxes["INBOX"]

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> ImapServer:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # end open sessions: their readline() returns b""
                writer.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> ImapServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        state = {"auth": False, "box": None, "read_only": False}
        writer.write(b"* OK [CAPABILITY " + CAPABILITIES.encode() + b"] test IMAP4rev1 server ready\r\n")
        try:
            while line := await reader.readline():
                text = line.rstrip(b"\r\n").decode("utf-8", "replace")
                tag, _, rest = text.partition(" ")
                command, _, args = rest.partition(" ")
                command = command.upper()
                if command == "UID":
                    sub, _, args = args.partition(" ")
                    command = f"UID {sub.upper()}"
                self.events.append(f"{command} {args}" if command != "LOGIN" else "LOGIN")
                out, done = self._dispatch(command, args, state)
                for piece in out:
                    writer.write(piece)
                writer.write(f"{tag} {done}\r\n".encode())
                await writer.drain()
                if command == "LOGOUT":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _dispatch(self, command: str, args: str, state: dict) -> tuple[list[bytes], str]:  # type: ignore[type-arg]
        if command == "CAPABILITY":
            return [f"* CAPABILITY {CAPABILITIES}\r\n".encode()], "OK CAPABILITY completed"
        if command == "NOOP":
            return [], "OK NOOP completed"
        if command == "LOGOUT":
            return [b"* BYE logging out\r\n"], "OK LOGOUT completed"
        if command == "LOGIN":
            user, _, password = args.partition(" ")
            if _unquote(user) == self.username and _unquote(password) == self.password:
                state["auth"] = True
                return [], f"OK [CAPABILITY {CAPABILITIES}] LOGIN completed"
            return [], "NO [AUTHENTICATIONFAILED] invalid credentials"
        if not state["auth"]:
            return [], "BAD log in first"
        if command in ("SELECT", "EXAMINE"):
            name = _unquote(args)
            box = self.mailboxes.get(name)
            if box is None:
                return [], "NO no such mailbox"
            state["box"], state["read_only"] = name, command == "EXAMINE"
            unseen = [m for m in box.messages if "\\Seen" not in m.flags]
            out = [
                b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
                f"* {len(box.messages)} EXISTS\r\n".encode(),
                b"* 0 RECENT\r\n",
                b"* OK [UIDVALIDITY 1] UIDs valid\r\n",
                f"* OK [UIDNEXT {box.next_uid}] predicted next UID\r\n".encode(),
            ]
            if unseen:
                out.append(f"* OK [UNSEEN {box.seq_of(unseen[0].uid)}] first unseen\r\n".encode())
            mode = "READ-ONLY" if state["read_only"] else "READ-WRITE"
            return out, f"OK [{mode}] {command} completed"
        if state["box"] is None:
            return [], "BAD select a mailbox first"
        box = self.mailboxes[state["box"]]
        if command == "UID SEARCH":
            words = args.upper().split()
            if words[:1] == ["CHARSET"]:
                words = words[2:]
            if words == ["UNSEEN"]:
                found = [m.uid for m in box.messages if "\\Seen" not in m.flags]
            elif words == ["ALL"]:
                found = [m.uid for m in box.messages]
            else:
                return [], "BAD only UNSEEN and ALL are supported here"
            return [("* SEARCH" + "".join(f" {u}" for u in found) + "\r\n").encode()], "OK SEARCH completed"
        if command == "UID FETCH":
            spec, _, items = args.partition(" ")
            items = items.upper()
            out = []
            for message in _uid_set(spec, box):
                if "BODY.PEEK[]" in items:
                    name = "BODY[]"
                elif "RFC822" in items or "BODY[]" in items:
                    name = "RFC822" if "RFC822" in items else "BODY[]"
                    if not state["read_only"]:
                        message.flags.add("\\Seen")
                else:
                    return [], "BAD only whole-message fetches are supported here"
                seq = box.seq_of(message.uid)
                out.append(
                    f"* {seq} FETCH (UID {message.uid} {name} {{{len(message.raw)}}}\r\n".encode()
                    + message.raw
                    + b")\r\n"
                )
            return out, "OK FETCH completed"
        if command == "UID STORE":
            if state["read_only"]:
                return [], "NO mailbox is read-only"
            spec, _, rest = args.partition(" ")
            mode, _, flags_text = rest.partition(" ")
            flags = set(flags_text.strip("()").split())
            out = []
            for message in _uid_set(spec, box):
                if mode.upper().startswith("+FLAGS"):
                    message.flags |= flags
                elif mode.upper().startswith("-FLAGS"):
                    message.flags -= flags
                else:
                    message.flags = flags
                if ".SILENT" not in mode.upper():
                    shown = " ".join(sorted(message.flags))
                    out.append(
                        f"* {box.seq_of(message.uid)} FETCH (UID {message.uid} FLAGS ({shown}))\r\n".encode()
                    )
            return out, "OK STORE completed"
        if command in ("EXPUNGE", "UID EXPUNGE"):
            chosen = _uid_set(args, box) if command == "UID EXPUNGE" else box.messages
            out = []
            for message in [m for m in chosen if "\\Deleted" in m.flags]:
                out.append(f"* {box.seq_of(message.uid)} EXPUNGE\r\n".encode())
                box.messages.remove(message)
            return out, "OK EXPUNGE completed"
        if command == "UID MOVE":
            spec, _, target = args.partition(" ")
            destination = self.mailboxes.get(_unquote(target))
            if destination is None:
                return [], "NO [TRYCREATE] no such mailbox"
            out = []
            for message in _uid_set(spec, box):
                new_uid = destination.append(message.raw, message.flags)
                out.append(f"* OK [COPYUID 1 {message.uid} {new_uid}] moved\r\n".encode())
                out.append(f"* {box.seq_of(message.uid)} EXPUNGE\r\n".encode())
                box.messages.remove(message)
            return out, "OK MOVE completed"
        return [], f"BAD {command} is not supported by this test server"
