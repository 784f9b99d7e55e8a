"""Admin pages for staff accounts and deadline rules, and the staff site's language switch, through a
logged-in web session on both databases: an admin creates an account, sets its password and TOTP, issues a
token (shown once, and it works on the API), revokes it and disables the account; deadline rules are added
and removed; every change is audited; a supervisor may look but not change; an investigator gets 403; a POST
without the CSRF token gets 403; bad input shows the page with the message and changes nothing."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.auth.models import ApiToken, Staff
from service.registry.models import DeadlineRule
from tests.helpers.app import Harness
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff

BASE = "/staff/registry/admin"


async def _count(harness: Harness, model: type, *where: object) -> int:
    async with harness.runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _audited(harness: Harness, action: str, object_id: str) -> int:
    return await _count(harness, AuditEntry, AuditEntry.action == action, AuditEntry.object_id == object_id)


async def test_admin_manages_an_account_from_creation_to_disabling(harness: Harness) -> None:
    admin = await make_web_staff(harness, ["admin"])
    async with log_in(harness, admin) as client:
        home = await client.get("/staff")
        assert f"{BASE}/staff" in home.text
        page = await client.get(f"{BASE}/staff")
        assert page.status_code == 200 and "新建账号" in page.text
        token = csrf_of(page.text)

        # bad input: no name, no role, unknown role, unknown unit -> the form again, nothing created
        before = await _count(harness, Staff)
        for data, text in (
            ({"name": " ", "roles": "investigator"}, "姓名不能为空"),
            ({"name": "新人甲"}, "角色无效"),
            ({"name": "新人甲", "roles": "boss"}, "角色无效"),
            ({"name": "新人甲", "roles": "investigator", "unit_id": "nope"}, "单位不存在"),
            ({"name": admin.name, "roles": "investigator"}, "同名账号已存在"),
        ):
            response = await client.post(f"{BASE}/staff", data={"csrf_token": token, **data})
            assert response.status_code in (404, 409, 422), (data, response.status_code)
            assert text in response.text and 'name="name"' in response.text, data
        assert await _count(harness, Staff) == before
        # no CSRF token -> 403, nothing created
        response = await client.post(f"{BASE}/staff", data={"name": "无令牌", "roles": "investigator"})
        assert response.status_code == 403
        assert await _count(harness, Staff) == before

        # create with two roles
        response = await client.post(
            f"{BASE}/staff",
            data={"csrf_token": token, "name": "核查员乙", "roles": ["investigator", "operator"]},
        )
        assert response.status_code == 303, response.text
        staff_id = response.headers["location"].split("/")[-1].split("?")[0]
        assert await _audited(harness, "staff.created", staff_id) == 1
        page = await client.get(response.headers["location"])
        assert "核查员乙" in page.text and "核查人员" in page.text and "接待登记员" in page.text

        # password: mismatch and too short change nothing; a good one is set and audited
        for data, text in (
            ({"password": "a long password 1", "password_again": "another one 22"}, "两次输入的密码不一致"),
            ({"password": "short", "password_again": "short"}, "至少需要"),
        ):
            response = await client.post(
                f"{BASE}/staff/{staff_id}/password", data={"csrf_token": token, **data}
            )
            assert response.status_code == 422 and text in response.text
        assert await _audited(harness, "staff.password_set", staff_id) == 0
        good = "a long password 甲乙丙"
        response = await client.post(
            f"{BASE}/staff/{staff_id}/password",
            data={"csrf_token": token, "password": good, "password_again": good},
        )
        assert response.status_code == 303
        assert await _audited(harness, "staff.password_set", staff_id) == 1

        # TOTP: the otpauth URI is shown once, on the answer page itself (not stored for a later GET)
        response = await client.post(f"{BASE}/staff/{staff_id}/totp", data={"csrf_token": token})
        assert response.status_code == 200 and "otpauth://" in response.text
        assert response.headers["cache-control"] == "no-store"
        assert "otpauth://" not in (await client.get(f"{BASE}/staff/{staff_id}")).text
        assert await _audited(harness, "staff.totp_enrolled", staff_id) == 1
        response = await client.post(f"{BASE}/staff/{staff_id}/totp/reset", data={"csrf_token": token})
        assert response.status_code == 303 and await _audited(harness, "staff.totp_reset", staff_id) == 1

        # a token, shown once; it works on the API; then revoked, and it stops working
        response = await client.post(f"{BASE}/staff/{staff_id}/tokens", data={"csrf_token": token})
        assert response.status_code == 200
        match = re.search(r'id="shown-once"[^>]*>(tlk_[^<]+)<', response.text)
        assert match, response.text
        api_token = match.group(1)
        assert api_token not in (await client.get(f"{BASE}/staff/{staff_id}")).text
        me = await harness.client.get("/api/v1/me", headers={"Authorization": f"Bearer {api_token}"})
        assert me.status_code == 200 and me.json()["name"] == "核查员乙"
        async with harness.runtime.session_factory() as session:
            token_id = await session.scalar(select(ApiToken.id).where(ApiToken.staff_id == staff_id))
        assert await _audited(harness, "token.issued", staff_id) == 1
        # someone else's token id on this account's page: refused, nothing revoked
        async with harness.runtime.session_factory() as session:
            admins_token = await session.scalar(select(ApiToken.id).where(ApiToken.staff_id == admin.id))
        response = await client.post(
            f"{BASE}/staff/{staff_id}/tokens/{admins_token}/revoke", data={"csrf_token": token}
        )
        assert response.status_code == 422 and "不属于此账号" in response.text
        assert (
            await _count(harness, ApiToken, ApiToken.id == admins_token, ApiToken.revoked_at.is_(None)) == 1
        )
        response = await client.post(
            f"{BASE}/staff/{staff_id}/tokens/{token_id}/revoke", data={"csrf_token": token}
        )
        assert response.status_code == 303 and await _audited(harness, "token.revoked", staff_id) == 1
        me = await harness.client.get("/api/v1/me", headers={"Authorization": f"Bearer {api_token}"})
        assert me.status_code == 401

        # disable: audited, tokens revoked, no new token for a disabled account
        response = await client.post(f"{BASE}/staff/{staff_id}/tokens", data={"csrf_token": token})
        second = re.search(r'id="shown-once"[^>]*>(tlk_[^<]+)<', response.text)
        assert second
        response = await client.post(f"{BASE}/staff/{staff_id}/disable", data={"csrf_token": token})
        assert response.status_code == 303 and await _audited(harness, "staff.disabled", staff_id) == 1
        me = await harness.client.get("/api/v1/me", headers={"Authorization": f"Bearer {second.group(1)}"})
        assert me.status_code == 401
        tokens_before = await _count(harness, ApiToken, ApiToken.staff_id == staff_id)
        response = await client.post(f"{BASE}/staff/{staff_id}/tokens", data={"csrf_token": token})
        assert response.status_code == 409 and "账号已停用" in response.text
        assert await _count(harness, ApiToken, ApiToken.staff_id == staff_id) == tokens_before
        assert (await client.get(f"{BASE}/staff/no-such-id")).status_code == 404


async def test_deadline_rules_are_added_and_removed(harness: Harness) -> None:
    admin = await make_web_staff(harness, ["admin"])
    async with log_in(harness, admin) as client:
        page = await client.get(f"{BASE}/deadlines")
        assert page.status_code == 200 and "默认期限" in page.text and "初步核实" in page.text
        token = csrf_of(page.text)
        before = await _count(harness, DeadlineRule)
        for data, text in (
            ({"stage": "nope", "amount": "5"}, "环节无效"),
            ({"stage": "verification", "amount": "x"}, "期限须为整数"),
            ({"stage": "verification", "amount": "0"}, "期限超出范围"),
            ({"stage": "verification", "amount": "30", "unit": "months"}, "期限超出范围"),
            ({"stage": "verification", "amount": "5", "unit": "weeks"}, "期限单位无效"),
            ({"stage": "verification", "amount": "5", "category": "nope"}, "问题类别不存在"),
            ({"stage": "verification", "amount": "5", "source": "nope"}, "来源无效"),
        ):
            response = await client.post(f"{BASE}/deadlines", data={"csrf_token": token, **data})
            assert response.status_code == 422 and text in response.text, (data, response.status_code)
        assert await _count(harness, DeadlineRule) == before
        response = await client.post(
            f"{BASE}/deadlines",
            data={
                "csrf_token": token,
                "stage": "verification",
                "source": "superior_assigned",
                "amount": "20",
            },
        )
        assert response.status_code == 303
        async with harness.runtime.session_factory() as session:
            rule = await session.scalar(
                select(DeadlineRule).where(DeadlineRule.source == "superior_assigned")
            )
        assert rule is not None and rule.working_days == 20 and rule.months is None
        assert await _audited(harness, "deadline_rule.created", rule.id) == 1
        page = await client.get(f"{BASE}/deadlines")
        assert "上级交办" in page.text and "20 个工作日" in page.text
        response = await client.post(f"{BASE}/deadlines/{rule.id}/remove", data={})
        assert (
            response.status_code == 403
            and await _count(harness, DeadlineRule, DeadlineRule.id == rule.id) == 1
        )
        response = await client.post(f"{BASE}/deadlines/{rule.id}/remove", data={"csrf_token": token})
        assert (
            response.status_code == 303
            and await _count(harness, DeadlineRule, DeadlineRule.id == rule.id) == 0
        )
        assert await _audited(harness, "deadline_rule.deleted", rule.id) == 1
        response = await client.post(f"{BASE}/deadlines/{rule.id}/remove", data={"csrf_token": token})
        assert response.status_code == 404 and "期限规则不存在" in response.text


async def test_supervisor_looks_investigator_is_refused(harness: Harness) -> None:
    admin = await make_web_staff(harness, ["admin"])
    supervisor = await make_web_staff(harness, ["supervisor"])
    investigator = await make_web_staff(harness, ["investigator"])
    async with log_in(harness, supervisor) as client:
        page = await client.get(f"{BASE}/staff")
        assert page.status_code == 200 and admin.name in page.text and "新建账号" not in page.text
        one = await client.get(f"{BASE}/staff/{admin.id}")
        assert one.status_code == 200 and "签发新令牌" not in one.text and "停用此账号" not in one.text
        deadlines = await client.get(f"{BASE}/deadlines")
        assert deadlines.status_code == 200 and "新增规则" not in deadlines.text
        token = csrf_of(page.text)
        before = await _count(harness, Staff)
        for path, data in (
            (f"{BASE}/staff", {"name": "越权", "roles": "admin"}),
            (f"{BASE}/staff/{admin.id}/disable", {}),
            (f"{BASE}/staff/{admin.id}/tokens", {}),
            (f"{BASE}/staff/{admin.id}/password", {"password": "x" * 20, "password_again": "x" * 20}),
            (f"{BASE}/staff/{admin.id}/totp", {}),
            (f"{BASE}/deadlines", {"stage": "verification", "amount": "5"}),
        ):
            response = await client.post(path, data={"csrf_token": token, **data})
            assert response.status_code == 403, path
        assert await _count(harness, Staff) == before
        assert await _count(harness, Staff, Staff.id == admin.id, Staff.disabled.is_(False)) == 1
        assert await _count(harness, DeadlineRule) == 0
    async with log_in(harness, investigator) as client:
        for path in (f"{BASE}/staff", f"{BASE}/staff/{admin.id}", f"{BASE}/deadlines"):
            assert (await client.get(path)).status_code == 403, path


async def test_language_switch_english_without_bilingual_labels(harness: Harness) -> None:
    admin = await make_web_staff(harness, ["admin"])
    async with log_in(harness, admin) as client:
        page = await client.get(f"{BASE}/staff")
        assert '<html lang="zh-CN">' in page.text and "新建账号" in page.text
        assert '<span lang="en">' not in page.text  # no English glosses beside the Chinese
        switch = await client.get(f"/staff/lang?to=en&next={BASE}/staff")
        assert switch.status_code == 303 and switch.headers["location"] == f"{BASE}/staff"
        page = await client.get(f"{BASE}/staff")
        assert '<html lang="en">' in page.text and "Create an account" in page.text
        assert "新建账号" not in page.text and "Log out" in page.text and "Staff accounts" in page.text
        # a message from the domain comes in the page's language
        response = await client.post(f"{BASE}/staff", data={"csrf_token": csrf_of(page.text), "name": "x"})
        assert "roles must be among" in response.text and "角色无效" not in response.text
        # only our own pages as the target (no open redirect)
        evil = await client.get("/staff/lang?to=zh&next=https://evil.example/")
        assert evil.headers["location"] == "/staff"
        page = await client.get(f"{BASE}/staff")
        assert '<html lang="zh-CN">' in page.text
        login_page = await client.get("/staff/login")
        assert '<span lang="en">' not in login_page.text and "工作人员登录" in login_page.text
