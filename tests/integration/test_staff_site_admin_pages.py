"""Registry admin pages (units, routing rules, taxonomy) through a logged-in web session, on both databases:
an admin sees and edits, a supervisor sees what the permissions allow, an investigator gets 403, a POST
without the CSRF token gets 403, bad input shows the form again with the message and changes nothing."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.auth.models import Unit
from service.registry.models import RoutingRule
from tests.helpers.app import Harness
from tests.helpers.registry import make_world
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff


async def _count(harness: Harness, model: type, *where: object) -> int:
    async with harness.runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_admin_edits_units_rules_and_reloads_the_taxonomy(harness: Harness) -> None:
    world = await make_world(harness)
    admin = await make_web_staff(harness, ["admin"])
    async with log_in(harness, admin) as client:
        home = await client.get("/staff")
        for href in (
            "/staff/registry/admin/units",
            "/staff/registry/admin/routing",
            "/staff/registry/admin/taxonomy",
        ):
            assert href in home.text, href
        page = await client.get("/staff/registry/admin/units")
        assert page.status_code == 200 and "新增单位" in page.text
        token = csrf_of(page.text)

        # add a unit with a parent
        response = await client.post(
            "/staff/registry/admin/units",
            data={
                "csrf_token": token,
                "name": "城东分局测试科",
                "kind": "police",
                "parent_id": world.accused_unit,
            },
        )
        assert response.status_code == 303, response.text
        async with harness.runtime.session_factory() as session:
            unit = await session.scalar(select(Unit).where(Unit.name == "城东分局测试科"))
            assert unit is not None and unit.parent_id == world.accused_unit and unit.kind == "police"
        units_before = await _count(harness, Unit)
        # bad input: empty name, duplicate name, unknown parent, unknown kind -> the form again, nothing added
        for data, text in (
            ({"name": "  "}, "单位名称不能为空"),
            ({"name": "城东分局测试科"}, "同名单位已存在"),
            ({"name": "新单位甲", "parent_id": "nope"}, "上级单位不存在"),
            ({"name": "新单位乙", "kind": "bogus"}, "单位类型无效"),
        ):
            response = await client.post("/staff/registry/admin/units", data={"csrf_token": token, **data})
            assert response.status_code in (404, 409, 422), (data, response.status_code)
            assert text in response.text and 'name="name"' in response.text
        assert await _count(harness, Unit) == units_before
        # no CSRF token -> 403, nothing added
        response = await client.post("/staff/registry/admin/units", data={"name": "无令牌单位"})
        assert response.status_code == 403
        assert await _count(harness, Unit) == units_before

        # routing rules: add, bad input, edit, disable, enable
        page = await client.get("/staff/registry/admin/routing")
        assert page.status_code == 200 and "新增规则" in page.text
        rules_before = await _count(harness, RoutingRule)
        response = await client.post(
            "/staff/registry/admin/routing",
            data={
                "csrf_token": token,
                "handling_unit_id": world.handling_unit,
                "accused_unit_id": unit.id,
                "priority": "7",
                "enabled": "1",
            },
        )
        assert response.status_code == 303, response.text
        async with harness.runtime.session_factory() as session:
            rule = await session.scalar(select(RoutingRule).where(RoutingRule.accused_unit_id == unit.id))
            assert rule is not None and rule.priority == 7 and rule.enabled
        for data, text in (
            ({"handling_unit_id": ""}, "请选择承办单位"),
            ({"handling_unit_id": world.handling_unit, "priority": "abc"}, "优先级须为整数"),
            ({"handling_unit_id": "nope"}, "单位不存在"),
            ({"handling_unit_id": world.handling_unit, "category": "nope"}, "问题类别不存在"),
            (
                {"handling_unit_id": world.other_unit, "default_assignee_id": world.investigator[0]},
                "默认承办人须属于承办单位",
            ),
        ):
            response = await client.post("/staff/registry/admin/routing", data={"csrf_token": token, **data})
            assert response.status_code == 422, (data, response.status_code)
            assert text in response.text and 'name="handling_unit_id"' in response.text
        assert await _count(harness, RoutingRule) == rules_before + 1

        edit = await client.get(f"/staff/registry/admin/routing/{rule.id}")
        assert edit.status_code == 200 and 'value="7"' in edit.text
        # bad edit: the edit form again, the rule unchanged
        response = await client.post(
            f"/staff/registry/admin/routing/{rule.id}",
            data={
                "csrf_token": token,
                "handling_unit_id": world.handling_unit,
                "priority": "-1",
                "enabled": "1",
            },
        )
        assert (
            response.status_code == 422
            and "优先级超出范围" in response.text
            and "修改分办规则" in response.text
        )
        response = await client.post(
            f"/staff/registry/admin/routing/{rule.id}",
            data={
                "csrf_token": token,
                "handling_unit_id": world.handling_unit,
                "accused_unit_id": unit.id,
                "default_assignee_id": world.investigator[0],
                "priority": "3",
                "enabled": "1",
            },
        )
        assert response.status_code == 303, response.text
        response = await client.post(
            f"/staff/registry/admin/routing/{rule.id}/enabled", data={"csrf_token": token}
        )
        assert response.status_code == 303
        async with harness.runtime.session_factory() as session:
            stored = await session.get(RoutingRule, rule.id)
            assert stored is not None
            assert (stored.priority, stored.default_assignee_id, stored.enabled) == (
                3,
                world.investigator[0],
                False,
            )
        response = await client.post(
            f"/staff/registry/admin/routing/{rule.id}/enabled", data={"csrf_token": token, "enabled": "1"}
        )
        assert response.status_code == 303
        assert (
            await _count(harness, RoutingRule, RoutingRule.id == rule.id, RoutingRule.enabled.is_(True)) == 1
        )
        assert (
            await client.post(f"/staff/registry/admin/routing/{rule.id}/enabled", data={})
        ).status_code == 403
        assert (await client.get("/staff/registry/admin/routing/nope")).status_code == 404

        # taxonomy: view and reload (audited)
        page = await client.get("/staff/registry/admin/taxonomy")
        assert page.status_code == 200 and "重新加载" in page.text
        version = re.search(r'id="taxonomy-version">([^<]+)<', page.text)
        assert version and "词条数" in page.text
        reloads = await _count(harness, AuditEntry, AuditEntry.action == "taxonomy.reloaded")
        response = await client.post("/staff/registry/admin/taxonomy/reload", data={"csrf_token": token})
        assert response.status_code == 303
        assert await _count(harness, AuditEntry, AuditEntry.action == "taxonomy.reloaded") == reloads + 1
        assert (await client.post("/staff/registry/admin/taxonomy/reload", data={})).status_code == 403
    async with harness.runtime.session_factory() as session:
        actions = set(
            (
                await session.execute(
                    select(AuditEntry.action).where(AuditEntry.actor == f"staff:{admin.id}")
                )
            ).scalars()
        )
    assert {"unit.created", "routing_rule.created", "routing_rule.updated", "taxonomy.reloaded"} <= actions


async def test_supervisor_views_and_investigator_is_refused(harness: Harness) -> None:
    world = await make_world(harness)
    supervisor = await make_web_staff(harness, ["supervisor"])
    investigator = await make_web_staff(harness, ["investigator"])
    async with log_in(harness, supervisor) as client:
        for path in (
            "/staff/registry/admin/units",
            "/staff/registry/admin/routing",
            "/staff/registry/admin/taxonomy",
        ):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert "新增" not in page.text and "重新加载" not in page.text and "修改</a>" not in page.text
        token = csrf_of(page.text)
        units = await _count(harness, Unit)
        rules = await _count(harness, RoutingRule)
        assert (
            await client.post("/staff/registry/admin/units", data={"csrf_token": token, "name": "督察甲"})
        ).status_code == 403
        assert (
            await client.post(
                "/staff/registry/admin/routing",
                data={"csrf_token": token, "handling_unit_id": world.handling_unit},
            )
        ).status_code == 403
        assert (
            await client.post("/staff/registry/admin/taxonomy/reload", data={"csrf_token": token})
        ).status_code == 403
        async with harness.runtime.session_factory() as session:
            rule_id = await session.scalar(select(RoutingRule.id).limit(1))
        assert (await client.get(f"/staff/registry/admin/routing/{rule_id}")).status_code == 403
        assert await _count(harness, Unit) == units and await _count(harness, RoutingRule) == rules
    async with log_in(harness, investigator) as client:
        home = await client.get("/staff")
        assert "/staff/registry/admin" not in home.text
        for path in (
            "/staff/registry/admin/units",
            "/staff/registry/admin/routing",
            "/staff/registry/admin/taxonomy",
        ):
            assert (await client.get(path)).status_code == 403, path
        token = csrf_of(home.text) if 'name="csrf_token"' in home.text else ""
        response = await client.post("/staff/registry/admin/units", data={"csrf_token": token, "name": "x"})
        assert response.status_code == 403
