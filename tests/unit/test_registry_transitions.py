"""The transition table and the reporter-facing status, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.registry.lifecycle import (
    REFERRAL_TARGETS,
    STATUS_NAMES,
    TRANSITIONS,
    Status,
    allowed_actions,
    public_status,
)
from service.registry.models import Clue, ClueState


def test_every_status_is_reachable_and_named() -> None:
    targets = {t.target for t in TRANSITIONS.values()}
    assert set(Status) - targets == {Status.registered}
    assert set(STATUS_NAMES) == set(Status)


def test_terminal_and_shelved_rules() -> None:
    assert allowed_actions("archived") == []
    assert allowed_actions("registered") == ["triage", "refer"]
    assert allowed_actions("verifying") == ["dispose", "send_on"]
    assert allowed_actions("disposed", "shelve") == ["reopen"]
    assert allowed_actions("disposed", "verification") == ["conclude"]
    assert allowed_actions("sent_on") == ["conclude"]
    assert allowed_actions("referred") == ["archive"]
    closing = [name for name, t in TRANSITIONS.items() if t.needs_approval]
    assert sorted(closing) == ["conclude", "dispose", "send_on"]


def _clue(status: str, real_name: bool = False) -> Clue:
    return Clue(id="c1", status=status, real_name=real_name)


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        ("registered", "已登记"),
        ("triaged", "已登记"),
        ("verifying", "正在办理"),
        ("sent_on", "正在办理"),
        ("concluded", "已办结"),
        ("archived", "已办结"),
    ],
)
def test_public_status_plain_words(status: str, fragment: str) -> None:
    result = public_status(_clue(status))
    assert fragment in result["text"] and result["text_en"] and result["referred_to"] is None


def test_real_name_reporter_is_promised_the_outcome_and_shelved_is_explained() -> None:
    assert "反馈" in public_status(_clue("concluded", real_name=True))["text"]
    assert "反馈" not in public_status(_clue("concluded"))["text"]
    shelved = ClueState(clue_id="c1", disposal_method="shelve")
    assert "补充" in public_status(_clue("disposed"), shelved)["text"]


@pytest.mark.parametrize("code", sorted(REFERRAL_TARGETS))
def test_referral_says_where_to_go(code: str) -> None:
    state = ClueState(clue_id="c1", referral_target=code, referred_at=datetime(2026, 2, 13, 20, tzinfo=UTC))
    result = public_status(_clue("referred"), state)
    assert REFERRAL_TARGETS[code][0] in result["text"]
    assert result["referred_to"] == {
        "code": code,
        "name": REFERRAL_TARGETS[code][0],
        "name_en": REFERRAL_TARGETS[code][1],
        "on": "2026-02-14",  # the local (Asia/Shanghai) date
    }
