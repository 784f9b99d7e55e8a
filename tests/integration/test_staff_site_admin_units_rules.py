"""Units renamed, moved and given aliases, deadline rules changed in place and routing rules removed — on the
admin pages (a logged-in web session with CSRF) and through the API, on both databases. Bad input (a cycle,
a name or alias another unit goes by, an empty name, an unknown unit or parent, a bad limit) gets a clear
error and changes nothing; a non-admin is refused; every change is audited with before and after. A clue
already in a stage keeps the due date it was given when a rule's limit changes; the next step uses the new
limit."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from urllib.parse import quote

from pydantic import TypeAdapter
from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.auth.models import Unit
from service.platform.errors import Conflict
from service.registry import recusal
from service.registry.deadlines import due_after_working_days
from service.registry.models import Clue, DeadlineRule, RoutingRule
from tests.helpers.app import Harness, auth, unique
from tests.helpers.registry import make_world, step, submit
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff

BASE = "/staff/registry/admin"


async def _count(harness: Harness, model: type, *where: object) -> int:
    async with harness.runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _unit(harness: Harness, unit_id: str) -> tuple[str, str | None, list[str]]:
    async with harness.runtime.session_factory() as session:
        unit = await session.get(Unit, unit_id)
        assert unit is not None
        return unit.name, unit.parent_id, json.loads(unit.aliases or "[]")


async def _audit_details(harness: Harness, action: str, object_id: str) -> list[dict]:
    async with harness.runtime.session_factory() as session:
        rows = await session.execute(
            select(AuditEntry.details)
            .where(AuditEntry.action == action, AuditEntry.object_id == object_id)
            .order_by(AuditEntry.id)
        )
        return [json.loads(d) for d in rows.scalars()]


async def test_admin_renames_and_moves_a_unit_and_a_cycle_is_refused(harness: Harness) -> None:
    top = await harness.add_unit(unique("县公安局"))
    middle = await harness.add_unit(unique("城关派出所"), top)
    below = await harness.add_unit(unique("城关警务室"), middle)
    other_name = unique("城南派出所")
    other = await harness.add_unit(other_name)
    async with harness.runtime.session_factory() as session:
        unit = await session.get(Unit, other)
        assert unit is not None
        unit.aliases = json.dumps([f"{other_name}别称"], ensure_ascii=False)
        await session.commit()
    admin = await make_web_staff(harness, ["admin"])
    async with log_in(harness, admin) as client:
        listing = await client.get(f"{BASE}/units")
        assert f'href="{BASE}/units/{middle}"' in listing.text and f"{other_name}别称" in listing.text
        page = await client.get(f"{BASE}/units/{middle}")
        assert page.status_code == 200 and "名称和上级单位" in page.text
        # the unit itself and its subunit are not offered as its parent
        parents = page.text.split('id="f-parent"')[1].split("</select>")[0]
        assert f'value="{top}"' in parents and f'value="{middle}"' not in parents
        assert f'value="{below}"' not in parents
        token = csrf_of(page.text)
        before = await _unit(harness, middle)

        new_name = unique("城关所")
        response = await client.post(
            f"{BASE}/units/{middle}", data={"csrf_token": token, "name": f" {new_name} ", "parent_id": ""}
        )
        assert response.status_code == 303, response.text
        assert await _unit(harness, middle) == (new_name, None, [])
        assert await _audit_details(harness, "unit.updated", middle) == [
            {
                "before": {"name": before[0], "parent_id": top},
                "after": {"name": new_name, "parent_id": None},
            }
        ]
        # saving the same again changes nothing and writes no audit entry
        response = await client.post(
            f"{BASE}/units/{middle}", data={"csrf_token": token, "name": new_name, "parent_id": ""}
        )
        assert response.status_code == 303
        assert len(await _audit_details(harness, "unit.updated", middle)) == 1

        state = await _unit(harness, middle)
        top_state = await _unit(harness, top)
        for unit_id, data, status, text in (
            (middle, {"name": new_name, "parent_id": below}, 409, "不能把单位移到它自己或它的下级单位之下"),
            (middle, {"name": new_name, "parent_id": middle}, 409, "不能把单位移到它自己或它的下级单位之下"),
            (middle, {"name": "   ", "parent_id": ""}, 422, "单位名称不能为空"),
            (middle, {"name": other_name, "parent_id": ""}, 409, "同名单位已存在"),
            (middle, {"name": f"{other_name}。", "parent_id": ""}, 409, "已是单位"),  # recusal's comparison
            (middle, {"name": f"{other_name}别称", "parent_id": ""}, 409, "已是单位"),  # another's alias
            (middle, {"name": new_name, "parent_id": "no-such-unit"}, 404, "上级单位不存在"),
        ):
            response = await client.post(f"{BASE}/units/{unit_id}", data={"csrf_token": token, **data})
            assert response.status_code == status, (data, response.status_code)
            assert text in response.text and 'name="name"' in response.text, data
            assert await _unit(harness, middle) == state and await _unit(harness, top) == top_state
        # a cycle through a longer chain: middle back under top, then top under below (below → middle → top)
        response = await client.post(
            f"{BASE}/units/{middle}", data={"csrf_token": token, "name": new_name, "parent_id": top}
        )
        assert response.status_code == 303
        response = await client.post(
            f"{BASE}/units/{top}", data={"csrf_token": token, "name": top_state[0], "parent_id": below}
        )
        assert response.status_code == 409 and "下级单位" in response.text
        assert (await _unit(harness, top))[1] is None
        # no CSRF token, an unknown unit
        response = await client.post(f"{BASE}/units/{middle}", data={"name": "无令牌", "parent_id": ""})
        assert response.status_code == 403 and (await _unit(harness, middle))[0] == new_name
        assert (await client.get(f"{BASE}/units/no-such-unit")).status_code == 404
        response = await client.post(
            f"{BASE}/units/no-such-unit", data={"csrf_token": token, "name": "甲乙", "parent_id": ""}
        )
        assert response.status_code == 404


async def test_aliases_on_the_page_are_checked_as_recusal_needs_them(harness: Harness) -> None:
    station_name = unique("城关派出所")
    station = await harness.add_unit(station_name)
    neighbour_name = unique("城南派出所")
    neighbour = await harness.add_unit(neighbour_name)
    admin = await make_web_staff(harness, ["admin"])
    async with log_in(harness, admin) as client:
        page = await client.get(f"{BASE}/units/{station}")
        token = csrf_of(page.text)
        alias = unique("关所")
        response = await client.post(
            f"{BASE}/units/{station}/aliases", data={"csrf_token": token, "alias": alias}
        )
        assert response.status_code == 303, response.text
        assert (await _unit(harness, station))[2] == [alias]
        assert response.headers["location"] == f"{BASE}/units/{station}?done=1"
        page = await client.get(response.headers["location"])
        assert alias in page.text and "已保存" in page.text
        # recusal now takes the alias for the unit
        async with harness.runtime.session_factory() as session:
            words = recusal.KeyedWords.of({"unit": f"{alias}的民警"}, b"k" * 32)
            match = await recusal.match_accused(session, words)
        assert station in match.named

        neighbour_alias = unique("南所")
        response = await client.post(
            f"{BASE}/units/{neighbour}/aliases", data={"csrf_token": token, "alias": neighbour_alias}
        )
        assert response.status_code == 303
        for alias_in, status, text in (
            ("", 422, "别名不能为空"),
            ("   ", 422, "别名不能为空"),
            ("派出所", 422, "只有通用词"),
            ("县公安局", 422, "只有通用词"),
            ("。。", 422, "单位别名须为2至100个字"),
            (station_name, 422, "与单位名称相同"),
            (f"{alias}！", 409, "本单位已有此别名"),
            (neighbour_name, 409, "已是单位"),
            (f"{neighbour_name} 。", 409, "已是单位"),
            (neighbour_alias, 409, "已是单位"),
        ):
            response = await client.post(
                f"{BASE}/units/{station}/aliases", data={"csrf_token": token, "alias": alias_in}
            )
            assert response.status_code == status, (alias_in, response.status_code)
            assert text in response.text and 'name="alias"' in response.text, alias_in
            assert f'id="f-name" name="name" maxlength="200" required value="{station_name}"' in response.text
            assert (await _unit(harness, station))[2] == [alias]
        # a unit's new name may not be another's alias either (checked above for rename); nor its own alias
        response = await client.post(
            f"{BASE}/units/{station}", data={"csrf_token": token, "name": alias, "parent_id": ""}
        )
        assert response.status_code == 409 and "请先删除该别名" in response.text
        # remove: an unknown alias is refused, the alias goes, audited with before and after
        response = await client.post(
            f"{BASE}/units/{station}/aliases/remove", data={"csrf_token": token, "alias": "没有的别名"}
        )
        assert response.status_code == 404 and "本单位没有这个别名" in response.text
        assert (await _unit(harness, station))[2] == [alias]
        response = await client.post(
            f"{BASE}/units/{station}/aliases/remove", data={"csrf_token": token, "alias": alias}
        )
        assert response.status_code == 303 and (await _unit(harness, station))[2] == []
        assert await _audit_details(harness, "unit.aliases_set", station) == [
            {"before": [], "after": [alias]},
            {"before": [alias], "after": []},
        ]
        response = await client.post(f"{BASE}/units/{station}/aliases", data={"alias": unique("无令牌")})
        assert response.status_code == 403 and (await _unit(harness, station))[2] == []
        # in English: the page's words and the domain's message, no Chinese labels left
        await client.get(f"/staff/lang?to=en&next={BASE}/units/{station}")
        page = await client.get(f"{BASE}/units/{station}")
        assert (
            "Name and parent unit" in page.text
            and "New alias" in page.text
            and "名称和上级单位" not in page.text
        )
        response = await client.post(
            f"{BASE}/units/{station}/aliases", data={"csrf_token": token, "alias": "派出所"}
        )
        assert response.status_code == 422 and "has only generic words" in response.text
        page = await client.get(f"{BASE}/deadlines")
        assert "keep their due date" in page.text


async def test_units_through_the_api(harness: Harness) -> None:
    _, admin = await harness.add_staff(unique("adm"), ["admin"])
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    top = await harness.add_unit(unique("区检察院"))
    unit = await harness.add_unit(unique("第一检察部"), top)
    other_name = unique("第二检察部")
    await harness.add_unit(other_name)
    name = unique("第三检察部")
    response = await harness.client.put(
        f"/api/v1/units/{unit}", headers=auth(admin), json={"name": name, "parent_id": None}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"id": unit, "name": name, "kind": "other", "parent_id": None, "aliases": []}
    alias = unique("三部")
    response = await harness.client.post(
        f"/api/v1/units/{unit}/aliases", headers=auth(admin), json={"alias": alias}
    )
    assert response.status_code == 201 and response.json()["aliases"] == [alias]
    listed = await harness.client.get("/api/v1/units", headers=auth(supervisor))
    assert {"id": unit, "name": name, "kind": "other", "parent_id": None, "aliases": [alias]} in listed.json()

    state = await _unit(harness, unit)
    for method, path, body, status in (
        ("PUT", f"/api/v1/units/{top}", {"name": unique("x甲"), "parent_id": top}, 409),  # under itself
        ("PUT", f"/api/v1/units/{unit}", {"name": "", "parent_id": None}, 422),
        ("PUT", f"/api/v1/units/{unit}", {"name": other_name, "parent_id": None}, 409),
        ("PUT", f"/api/v1/units/{unit}", {"name": name, "parent_id": "nope"}, 404),
        ("PUT", "/api/v1/units/nope", {"name": unique("甲"), "parent_id": None}, 404),
        ("PUT", f"/api/v1/units/{unit}", {"name": name, "kind": "court"}, 422),  # not changeable here
        ("POST", f"/api/v1/units/{unit}/aliases", {"alias": other_name}, 409),
        ("POST", f"/api/v1/units/{unit}/aliases", {"alias": "法院"}, 422),
        ("POST", f"/api/v1/units/{unit}/aliases", {"alias": ""}, 422),
        ("POST", "/api/v1/units/nope/aliases", {"alias": unique("别名")}, 404),
        ("DELETE", f"/api/v1/units/{unit}/aliases/{quote('不存在')}", None, 404),
    ):
        response = await harness.client.request(method, path, headers=auth(admin), json=body)
        assert response.status_code == status, (method, path, body, response.text)
        assert response.json()["error"]["message"], response.text
    assert await _unit(harness, unit) == state
    # a non-admin is refused, nothing changes
    for method, path, body in (
        ("PUT", f"/api/v1/units/{unit}", {"name": unique("越权"), "parent_id": None}),
        ("POST", f"/api/v1/units/{unit}/aliases", {"alias": unique("越权")}),
        ("DELETE", f"/api/v1/units/{unit}/aliases/{quote(alias)}", None),
    ):
        response = await harness.client.request(method, path, headers=auth(supervisor), json=body)
        assert response.status_code == 403, (method, path)
    assert await _unit(harness, unit) == state
    response = await harness.client.delete(
        f"/api/v1/units/{unit}/aliases/{quote(alias)}", headers=auth(admin)
    )
    assert response.status_code == 200 and response.json()["aliases"] == []


async def test_a_deadline_rule_changed_in_place_applies_from_the_next_step(harness: Harness) -> None:
    world = await make_world(harness)
    admin = await make_web_staff(harness, ["admin"])
    rule_id = (
        await harness.client.post(
            "/api/v1/deadline-rules",
            headers=auth(world.admin[1]),
            json={"stage": "disposal", "working_days": 20},
        )
    ).json()["id"]
    try:
        clue_id = await submit(harness, world)
        assert (await step(harness, clue_id, world.supervisor[1], "triage")).status_code == 201
        async with harness.runtime.session_factory() as session:
            clue = await session.get(Clue, clue_id)
            assert clue is not None
            received, given = clue.received_at, clue.due_at
        assert given == due_after_working_days(received, 20)

        async with log_in(harness, admin) as client:
            page = await client.get(f"{BASE}/deadlines")
            assert "已在该环节的线索保持原到期日" in page.text and f"{BASE}/deadlines/{rule_id}" in page.text
            token = csrf_of(page.text)
            for data, status, text in (
                ({"amount": "x"}, 422, "期限须为整数"),
                ({"amount": "0"}, 422, "期限超出范围"),
                ({"amount": "366"}, 422, "期限超出范围"),
                ({"amount": "25", "unit": "months"}, 422, "期限超出范围"),
                ({"amount": "5", "unit": "weeks"}, 422, "期限单位无效"),
            ):
                response = await client.post(
                    f"{BASE}/deadlines/{rule_id}", data={"csrf_token": token, **data}
                )
                assert response.status_code == status and text in response.text, data
                assert f'value="{data["amount"]}"' in response.text  # what was typed is shown again
            response = await client.post(
                f"{BASE}/deadlines/no-such-rule", data={"csrf_token": token, "amount": "5"}
            )
            assert response.status_code == 404 and "期限规则不存在" in response.text
            assert (
                await client.post(f"{BASE}/deadlines/{rule_id}", data={"amount": "40"})
            ).status_code == 403
            assert await _count(
                harness, DeadlineRule, DeadlineRule.working_days == 20, DeadlineRule.id == rule_id
            )

            response = await client.post(
                f"{BASE}/deadlines/{rule_id}",
                data={"csrf_token": token, "amount": "40", "unit": "working_days"},
            )
            assert response.status_code == 303
            page = await client.get(f"{BASE}/deadlines")
            assert "40 个工作日" in page.text
        assert await _audit_details(harness, "deadline_rule.updated", rule_id) == [
            {"before": {"working_days": 20, "months": None}, "after": {"working_days": 40, "months": None}}
        ]
        # the clue already in the disposal stage keeps its date; the next step uses the new limit
        async with harness.runtime.session_factory() as session:
            assert (await session.get(Clue, clue_id)).due_at == given  # type: ignore[union-attr]
        assert (await step(harness, clue_id, world.investigator[1], "accept")).status_code == 201
        async with harness.runtime.session_factory() as session:
            assert (await session.get(Clue, clue_id)).due_at == due_after_working_days(  # type: ignore[union-attr]
                received, 40
            )

        # the API: months instead, bad input, a non-admin
        response = await harness.client.put(
            f"/api/v1/deadline-rules/{rule_id}", headers=auth(world.admin[1]), json={"months": 2}
        )
        assert response.status_code == 200 and (
            response.json()["months"],
            response.json()["working_days"],
        ) == (
            2,
            None,
        )
        for body, status in (
            ({"months": 2, "working_days": 5}, 422),
            ({}, 422),
            ({"months": 0}, 422),
            ({"working_days": "many"}, 422),
            ({"months": 1, "stage": "inquiry"}, 422),  # what a rule applies to is not changed here
        ):
            response = await harness.client.put(
                f"/api/v1/deadline-rules/{rule_id}", headers=auth(world.admin[1]), json=body
            )
            assert response.status_code == status, (body, response.text)
        response = await harness.client.put(
            f"/api/v1/deadline-rules/{rule_id}", headers=auth(world.supervisor[1]), json={"months": 3}
        )
        assert response.status_code == 403
        response = await harness.client.put(
            "/api/v1/deadline-rules/nope", headers=auth(world.admin[1]), json={"months": 3}
        )
        assert response.status_code == 404
        assert await _count(harness, DeadlineRule, DeadlineRule.months == 2, DeadlineRule.id == rule_id) == 1
    finally:  # the deadline rules are shared by every test of the session
        async with harness.runtime.session_factory() as session:
            rule = await session.get(DeadlineRule, rule_id)
            if rule is not None:
                await session.delete(rule)
                await session.commit()


async def test_routing_rules_are_removed_on_the_page_and_through_the_api(harness: Harness) -> None:
    world = await make_world(harness)
    admin = await make_web_staff(harness, ["admin"])
    supervisor = await make_web_staff(harness, ["supervisor"])

    async def new_rule() -> str:
        response = await harness.client.post(
            "/api/v1/routing-rules",
            headers=auth(world.admin[1]),
            json={"handling_unit_id": world.other_unit, "accused_unit_id": world.other_unit, "priority": 99},
        )
        assert response.status_code == 201
        return response.json()["id"]

    first, second = await new_rule(), await new_rule()
    async with log_in(harness, supervisor) as client:
        page = await client.get(f"{BASE}/routing")
        assert f"{BASE}/routing/{first}/remove" not in page.text
        response = await client.post(
            f"{BASE}/routing/{first}/remove", data={"csrf_token": csrf_of(page.text)}
        )
        assert (
            response.status_code == 403 and await _count(harness, RoutingRule, RoutingRule.id == first) == 1
        )
    async with log_in(harness, admin) as client:
        page = await client.get(f"{BASE}/routing")
        assert f"{BASE}/routing/{first}/remove" in page.text
        token = csrf_of(page.text)
        assert (await client.post(f"{BASE}/routing/{first}/remove", data={})).status_code == 403
        response = await client.post(f"{BASE}/routing/{first}/remove", data={"csrf_token": token})
        assert (
            response.status_code == 303 and await _count(harness, RoutingRule, RoutingRule.id == first) == 0
        )
        response = await client.post(f"{BASE}/routing/{first}/remove", data={"csrf_token": token})
        assert response.status_code == 404 and "分办规则不存在" in response.text
    assert await _audit_details(harness, "routing_rule.deleted", first) == [
        {
            "handling_unit_id": world.other_unit,
            "category": None,
            "accused_unit_id": world.other_unit,
            "default_assignee_id": None,
            "priority": 99,
            "enabled": True,
        }
    ]
    response = await harness.client.delete(
        f"/api/v1/routing-rules/{second}", headers=auth(world.supervisor[1])
    )
    assert response.status_code == 403 and await _count(harness, RoutingRule, RoutingRule.id == second) == 1
    response = await harness.client.delete(f"/api/v1/routing-rules/{second}", headers=auth(world.admin[1]))
    assert response.status_code == 204 and await _count(harness, RoutingRule, RoutingRule.id == second) == 0
    response = await harness.client.delete(f"/api/v1/routing-rules/{second}", headers=auth(world.admin[1]))
    assert response.status_code == 404


async def test_non_admins_cannot_change_units_or_rules_on_the_pages(harness: Harness) -> None:
    world = await make_world(harness)
    unit_before = await _unit(harness, world.other_unit)
    for roles in (["supervisor"], ["investigator"], ["operator"]):
        person = await make_web_staff(harness, roles)
        async with log_in(harness, person) as client:
            home = await client.get("/staff")
            token = csrf_of(home.text) if 'name="csrf_token"' in home.text else ""
            assert (await client.get(f"{BASE}/units/{world.other_unit}")).status_code == 403
            for path, data in (
                (f"{BASE}/units/{world.other_unit}", {"name": unique("越权"), "parent_id": ""}),
                (f"{BASE}/units/{world.other_unit}/aliases", {"alias": unique("越权")}),
                (f"{BASE}/units/{world.other_unit}/aliases/remove", {"alias": "x"}),
                (f"{BASE}/deadlines/any", {"amount": "5"}),
                (f"{BASE}/routing/any/remove", {}),
            ):
                response = await client.post(path, data={"csrf_token": token, **data})
                assert response.status_code == 403, (roles, path)
    assert await _unit(harness, world.other_unit) == unit_before


async def test_two_moves_at_once_cannot_make_a_cycle(harness: Harness) -> None:
    """A under B and B under A, at the same time: the second waits for the first's lock on the units, then
    sees the first's move and is refused."""
    first = await harness.add_unit(unique("甲处"))
    second = await harness.add_unit(unique("乙处"))
    first_moved = asyncio.Event()

    async def move(unit_id: str, parent_id: str, *, hold: bool) -> str:
        async with harness.runtime.session_factory() as session:
            if not hold:
                await first_moved.wait()
            name = (await _unit(harness, unit_id))[0]
            try:
                await auth_service.update_unit(
                    session, unit_id=unit_id, name=name, parent_id=parent_id, actor="test"
                )
            except Conflict:
                return "refused"
            finally:
                if hold:
                    first_moved.set()
            if hold:
                await asyncio.sleep(0.5)  # keep the lock while the other move starts
            await session.commit()
            return "moved"

    results = await asyncio.gather(move(first, second, hold=True), move(second, first, hold=False))
    assert results == ["moved", "refused"]
    assert (await _unit(harness, first))[1] == second and (await _unit(harness, second))[1] is None


async def test_a_changed_acceptance_notice_rule_applies_at_once(harness: Harness) -> None:
    """The acceptance notice's limit is not stored on the clue: the supervision list works it out from the
    rules in force, so a change shows at once (unlike a stage's due date, kept from its step)."""
    world = await make_world(harness)
    sup, admin = world.supervisor[1], world.admin[1]
    response = await harness.client.post(
        "/api/v1/deadline-rules",
        headers=auth(admin),
        json={"stage": "acceptance_notice", "source": "public_report", "working_days": 20},
    )
    rule_id = response.json()["id"]
    try:
        clue_id = await submit(harness, world, anonymous=False)
        assert (await step(harness, clue_id, sup, "triage")).status_code == 201
        response = await harness.client.put(
            f"/api/v1/clues/{clue_id}/supervision",
            headers=auth(sup),
            json={"key_clue": True, "leader_id": world.approver[0], "reason": "实名举报"},
        )
        assert response.status_code == 200, response.text
        async with harness.runtime.session_factory() as session:
            received = (await session.get(Clue, clue_id)).received_at  # type: ignore[union-attr]

        async def notice_due() -> str:
            listed = (await harness.client.get("/api/v1/supervision", headers=auth(sup))).json()
            return next(i for i in listed if i["id"] == clue_id)["acceptance_notice"]["due_at"]

        def iso(moment: object) -> str:
            return TypeAdapter(datetime).dump_python(moment, mode="json")

        assert await notice_due() == iso(due_after_working_days(received, 20))
        response = await harness.client.put(
            f"/api/v1/deadline-rules/{rule_id}", headers=auth(admin), json={"working_days": 25}
        )
        assert response.status_code == 200
        assert await notice_due() == iso(due_after_working_days(received, 25))
    finally:
        async with harness.runtime.session_factory() as session:
            rule = await session.get(DeadlineRule, rule_id)
            if rule is not None:
                await session.delete(rule)
                await session.commit()
