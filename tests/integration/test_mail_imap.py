"""The IMAP poller's logic against a fake client (no in-test IMAP server yet): a message is marked only
after its commit; a failed ingest leaves it unmarked; a second round after a crash is a no-op."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.mail.imap import poll_once
from service.mail.ingest import DUPLICATE, MailIngest
from tests.conftest import unique


@dataclass
class FakeMailbox:
    messages: dict[str, bytes]
    marked: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    async def uid_search_unseen(self) -> list[str]:
        return [uid for uid in self.messages if uid not in self.marked]

    async def fetch(self, uid: str) -> bytes | None:
        return self.messages.get(uid)

    async def mark_done(self, uid: str) -> None:
        self.events.append(f"mark:{uid}")
        self.marked.append(uid)


def raw(text: str) -> bytes:
    return (
        f"From: a <a@example.cn>\r\nTo: jubao@tipline.local\r\nSubject: 举报\r\nMessage-ID: <{unique('i')}@x>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


async def test_marks_only_after_commit_and_is_idempotent(harness) -> None:  # type: ignore[no-untyped-def]
    real = MailIngest(harness.runtime, via="imap")
    box = FakeMailbox({"1": raw("派出所民警收钱。"), "2": raw("法官吃请。")})
    outcomes: list[str] = []

    async def ingest(data: bytes) -> str:
        outcome = await real(data)
        box.events.append("committed")
        outcomes.append(outcome)
        return outcome

    assert await poll_once(box, ingest) == 2
    assert box.events == ["committed", "mark:1", "committed", "mark:2"]
    # A crash between commit and mark: the next round fetches it again and changes nothing.
    box.marked.remove("2")
    assert await poll_once(box, ingest) == 1 and outcomes[-1] == DUPLICATE

    async def failing(data: bytes) -> str:
        raise ConnectionError

    box.messages["3"] = raw("检察官压案。")
    assert await poll_once(box, failing) == 0 and "3" not in box.marked
    assert await poll_once(box, ingest) == 1 and "3" in box.marked
