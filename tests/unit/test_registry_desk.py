"""The desk's shared definitions: overdue and near due (open, not shelved), the handling unit in words that
agree with the status, investigators grouped with the handling unit first."""

from __future__ import annotations

from datetime import timedelta

from service.platform.timeutil import utcnow
from service.registry import desk
from service.registry.models import Clue, ClueState
from service.staff_site.clue_pages import grouped_investigators, unit_label


def clue(status: str, due_in_days: float) -> Clue:
    return Clue(id="c", status=status, due_at=utcnow() + timedelta(days=due_in_days))


def test_due_state_counts_only_running_clocks() -> None:
    now = utcnow()
    assert desk.due_state(clue("verifying", -1), None, now) == "overdue"
    assert desk.due_state(clue("registered", 2), None, now) == "near"
    assert desk.due_state(clue("verifying", desk.NEAR_DUE_DAYS + 1), None, now) is None
    assert desk.due_state(clue("concluded", -10), None, now) is None  # closed: no clock
    shelved = ClueState(clue_id="c", disposal_method="shelve")
    assert desk.due_state(clue("disposed", -10), shelved, now) is None  # 暂存待查: no clock
    window = desk.due_window("near", now)
    assert window["due_from"] == now and window["due_before"] == now + timedelta(days=desk.NEAR_DUE_DAYS)
    assert desk.due_window("overdue", now)["due_before"] == now and desk.due_window("bogus", now) == {}


def test_unit_label_agrees_with_the_status() -> None:
    assert unit_label("registered", "") == "未分办"
    assert unit_label("triaged", "") == "未指定承办单位"
    assert unit_label("registered", "区纪委监委") == "区纪委监委"


def test_investigators_of_the_handling_unit_come_first() -> None:
    units = {"u1": "城东分局", "u2": "城西分局"}
    people = [("a", "张", "u1"), ("b", "李", "u2"), ("c", "王", None), ("d", "赵", "u2")]
    groups = grouped_investigators(people, "u2", units)
    assert groups[0] == ("承办单位：城西分局", [("b", "李"), ("d", "赵")])
    assert [g for g, _ in groups] == ["承办单位：城西分局", "城东分局", "未定单位"]
    assert [g for g, _ in grouped_investigators(people, None, units)] == [
        "城东分局",
        "城西分局",
        "未定单位",
    ]  # by name
