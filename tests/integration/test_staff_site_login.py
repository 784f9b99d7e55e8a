# ruff: noqa: S105, S106
"""Staff web login: password + TOTP, cookies, CSRF, lockout, timeouts, audit — on SQLite and PostgreSQL.

The login helpers (``make_web_staff``, ``web_client``, ``log_in``) are in ``tests/helpers/staff_web.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select, update

from service.audit.models import AuditEntry
from service.auth import sessions as session_service
from service.auth.login_models import StaffSession
from service.platform.timeutil import utcnow
from tests.helpers.app import Harness, auth, unique
from tests.helpers.staff_web import CSRF_RE, PASSWORD, csrf_of, log_in, make_web_staff, post_login, web_client


async def test_password_and_totp_log_in_with_a_strict_cookie(harness: Harness) -> None:
    staff = await make_web_staff(harness, ["operator"])
    async with web_client(harness) as client:
        response = await post_login(client, staff.name, PASSWORD, staff.code())
        assert response.status_code == 303 and response.headers["location"] == "/staff"
        cookie = [v for k, v in response.headers.multi_items() if k == "set-cookie" and "tipline_staff" in v][
            0
        ]
        assert cookie.startswith("__Host-tipline_staff=")
        lowered = cookie.lower()
        assert "httponly" in lowered and "secure" in lowered and "samesite=strict" in lowered
        assert "path=/" in lowered and "domain" not in lowered
        value = cookie.split(";")[0].split("=", 1)[1]
        assert len(value) >= 43 and staff.id not in value  # opaque random id only
        home = await client.get("/staff")
        assert home.status_code == 200 and staff.name in home.text
        assert "default-src 'none'" in home.headers["content-security-policy"]
        assert home.headers["cache-control"] == "no-store"
    async with harness.runtime.session_factory() as session:
        stored = (
            await session.execute(select(StaffSession).where(StaffSession.staff_id == staff.id))
        ).scalar_one()
        assert stored.session_hash == session_service.session_hash(value)  # only the hash is stored


async def test_wrong_password_wrong_code_and_replayed_code_are_refused(harness: Harness) -> None:
    staff = await make_web_staff(harness, ["operator"])
    async with web_client(harness) as client:
        assert (await post_login(client, staff.name, "wrong password 123", staff.code())).status_code == 401
        assert (await post_login(client, staff.name, PASSWORD, "000000")).status_code == 401
        assert (await post_login(client, staff.name, PASSWORD, "")).status_code == 422
        used = staff.code()  # kept: a second staff.code() could fall in the next 30-s step, a fresh code
        ok = await post_login(client, staff.name, PASSWORD, used)
        assert ok.status_code == 303
    async with web_client(harness) as other:
        replay = await post_login(other, staff.name, PASSWORD, used)  # the same code again
        assert replay.status_code == 401


async def test_pages_need_a_session(harness: Harness) -> None:
    async with web_client(harness) as client:
        response = await client.get("/staff")
        assert response.status_code == 303 and response.headers["location"].startswith("/staff/login")
        client.cookies.set("__Host-tipline_staff", "forged-session-value", domain="tipline.test")
        assert (await client.get("/staff")).status_code == 303
    api = await harness.client.get("/staff", headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.json()["error"]["code"] == "unauthenticated"


async def test_csrf_token_is_required_on_posts(harness: Harness) -> None:
    staff = await make_web_staff(harness, ["operator"])
    async with log_in(harness, staff) as client:
        home = await client.get("/staff")
        token = csrf_of(home.text)
        assert (await client.post("/staff/logout", data={})).status_code == 403
        assert (await client.post("/staff/logout", data={"csrf_token": "0" * 64})).status_code == 403
        assert (await client.get("/staff")).status_code == 200  # still logged in
        out = await client.post("/staff/logout", data={"csrf_token": token})
        assert out.status_code == 303
        assert (await client.get("/staff")).status_code == 303  # the session is gone


async def test_login_form_itself_needs_its_csrf_cookie(harness: Harness) -> None:
    staff = await make_web_staff(harness, ["operator"])
    async with web_client(harness) as client:
        response = await client.post(
            "/staff/login",
            data={"name": staff.name, "password": PASSWORD, "totp": staff.code(), "csrf_token": "x"},
        )
        assert response.status_code == 403


async def test_lockout_after_repeated_failures_and_names_do_not_leak(harness: Harness) -> None:
    staff = await make_web_staff(harness, ["operator"])
    ghost = unique("nobody")
    max_failures = harness.runtime.settings.staff_login_max_failures
    async with web_client(harness) as client:
        real, fake = [], []
        for _ in range(max_failures):
            real.append(await post_login(client, staff.name, "wrong password 123", "123456"))
            fake.append(await post_login(client, ghost, "wrong password 123", "123456"))
        assert [r.status_code for r in real] == [r.status_code for r in fake]
        assert real[0].status_code == 401 and real[-1].status_code == 429
        strip = lambda r: CSRF_RE.sub("", r.text)  # noqa: E731
        assert strip(real[0]) == strip(fake[0]).replace(ghost, staff.name)
        # Locked: even the right password and code are refused, and nothing reveals which name is real.
        locked = await post_login(client, staff.name, PASSWORD, staff.code())
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert (await post_login(client, ghost, PASSWORD, "123456")).status_code == 429
    # After the lock runs out the right credentials work again (the backoff doubles next time).
    async with harness.runtime.session_factory() as session:
        await session.execute(
            update(session_service.LoginThrottle)
            .where(
                session_service.LoginThrottle.name_key
                == session_service.name_key(harness.runtime, staff.name)
            )
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    async with web_client(harness) as client:
        assert (await post_login(client, staff.name, PASSWORD, staff.code())).status_code == 303


async def test_backoff_doubles() -> None:
    from service.platform.settings import Settings

    settings = Settings(
        staff_login_max_failures=3, staff_lockout_base_seconds=60, staff_lockout_max_seconds=3600
    )
    seconds = [session_service._lockout_seconds(settings, n) for n in range(1, 10)]  # noqa: SLF001
    assert seconds == [0, 0, 60, 120, 240, 480, 960, 1920, 3600]


async def test_idle_and_absolute_timeouts(harness: Harness) -> None:
    settings = harness.runtime.settings
    staff = await make_web_staff(harness, ["operator"])
    async with log_in(harness, staff) as client:
        assert (await client.get("/staff")).status_code == 200
        async with harness.runtime.session_factory() as session:
            await session.execute(
                update(StaffSession)
                .where(StaffSession.staff_id == staff.id)
                .values(
                    last_seen_at=utcnow() - timedelta(minutes=settings.staff_session_idle_minutes, seconds=1)
                )
            )
            await session.commit()
        assert (await client.get("/staff")).status_code == 303
    async with log_in(harness, staff, offset_steps=1) as client:
        async with harness.runtime.session_factory() as session:
            await session.execute(
                update(StaffSession)
                .where(StaffSession.staff_id == staff.id, StaffSession.revoked_at.is_(None))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        assert (await client.get("/staff")).status_code == 303


async def test_disabled_account_and_totp_reset_end_web_access(harness: Harness) -> None:
    _, admin_token = await harness.add_staff(unique("admin"), ["admin"])
    staff = await make_web_staff(harness, ["operator"])
    async with log_in(harness, staff) as client:
        reset = await harness.client.delete(f"/api/v1/staff/{staff.id}/totp", headers=auth(admin_token))
        assert reset.status_code == 204
        assert (await client.get("/staff")).status_code == 303
    async with web_client(harness) as client:  # no TOTP enrolled: no login
        assert (await post_login(client, staff.name, PASSWORD, staff.code(1))).status_code == 401
    enrol = await harness.client.post(f"/api/v1/staff/{staff.id}/totp", headers=auth(admin_token))
    assert enrol.status_code == 201 and enrol.json()["otpauth_uri"].startswith("otpauth://totp/")
    staff.totp = pyotp.parse_uri(enrol.json()["otpauth_uri"])  # type: ignore[assignment]
    async with log_in(harness, staff) as client:
        disable = await harness.client.post(f"/api/v1/staff/{staff.id}/disable", headers=auth(admin_token))
        assert disable.status_code == 200
        assert (await client.get("/staff")).status_code == 303


async def test_admin_api_sets_passwords_and_only_admins_may(harness: Harness) -> None:
    _, admin_token = await harness.add_staff(unique("admin"), ["admin"])
    _, supervisor_token = await harness.add_staff(unique("sup"), ["supervisor"])
    staff_id, _ = await harness.add_staff(unique("op"), ["operator"])
    url = f"/api/v1/staff/{staff_id}/password"
    weak = await harness.client.post(url, json={"password": "short"}, headers=auth(admin_token))
    assert weak.status_code == 422 and weak.json()["error"]["message_en"]
    forbidden = await harness.client.post(url, json={"password": PASSWORD}, headers=auth(supervisor_token))
    assert forbidden.status_code == 403
    assert (
        await harness.client.post(url, json={"password": PASSWORD}, headers=auth(admin_token))
    ).status_code == 204
    missing = await harness.client.post(
        "/api/v1/staff/nope/password", json={"password": PASSWORD}, headers=auth(admin_token)
    )
    assert missing.status_code == 404


async def test_audit_records_logins_without_secrets(harness: Harness) -> None:
    staff = await make_web_staff(harness, ["operator"])
    ghost = unique("ghost")
    secret_typed = "my secret password 42"
    async with web_client(harness) as client:
        await post_login(client, staff.name, secret_typed, "654321")
        await post_login(client, ghost, secret_typed, "654321")
        code = staff.code()
        await post_login(client, staff.name, PASSWORD, code)
        home = await client.get("/staff")
        await client.post("/staff/logout", data={"csrf_token": csrf_of(home.text)})
    async with harness.runtime.session_factory() as session:
        rows = list(
            (await session.execute(select(AuditEntry).where(AuditEntry.object_id == staff.id))).scalars()
        )
        actions = [r.action for r in rows]
        assert "login.failed" in actions and "login.succeeded" in actions and "logout" in actions
        everything = " ".join(
            f"{r.actor} {r.details} {r.object_id}"
            for r in (await session.execute(select(AuditEntry))).scalars()
        )
    for secret in (secret_typed, PASSWORD, code, "654321", ghost):
        assert secret not in everything


async def test_cli_derives_the_same_totp_key_as_the_server(harness: Harness) -> None:
    runtime = harness.runtime
    assert session_service.totp_key(runtime.lookup_secret) == runtime.lookup_key(
        session_service.TOTP_KEY_LABEL
    )
